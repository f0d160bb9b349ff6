"""Fitting text lines to a terminal's width: display columns, cuts with an ellipsis, shrink order.

Pure functions. A line is a list of segments; when it is wider than the terminal, the segments
given up first shrink first (a message before a name), down to a minimum, then to nothing, and
only then is the line cut at the width. Widths count display columns (a CJK character takes two,
a combining mark none), not characters.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

ELLIPSIS = "…"


def char_width(char: str) -> int:
    """Columns one character takes on a terminal: 0 for combining marks, 2 for wide ones, else 1."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal."""
    if text.isascii():
        return len(text)
    return sum(char_width(c) for c in text)


def cut(text: str, columns: int) -> str:
    """`text` cut to at most `columns` display columns, ending in an ellipsis when it was cut."""
    if display_width(text) <= columns:
        return text
    if columns <= 0:
        return ""
    out, used = [], 0
    for char in text:
        w = char_width(char)
        if used + w > columns - 1:
            break
        out.append(char)
        used += w
    return "".join(out).rstrip() + ELLIPSIS


def pad(text: str, columns: int) -> str:
    """`text` padded with spaces to `columns` display columns (ljust that counts columns)."""
    return text + " " * max(0, columns - display_width(text))


@dataclass
class Segment:
    """A piece of a line: `text` between a fixed `prefix` and `suffix`, painted by `paint`.

    `role` names what may shrink ("message", "name"); a segment shrunk to nothing loses its
    prefix and suffix too.
    """

    text: str
    prefix: str = ""
    suffix: str = ""
    role: str | None = None
    paint: Callable[[str], str] | None = None

    @property
    def width(self) -> int:
        return display_width(self.prefix) + display_width(self.text) + display_width(self.suffix) if self.text \
            or self.role is None else 0


# What a too-wide line gives up, in order: (role, the columns it keeps at least).
SHRINK_ORDER: tuple[tuple[str, int], ...] = (("message", 20), ("name", 10), ("message", 0), ("name", 0))


def fit_segments(segments: Sequence[Segment], width: int | None,
                 order: Sequence[tuple[str, int]] = SHRINK_ORDER) -> str:
    """The line the segments make, painted; within `width` columns when one is given (a terminal)."""
    parts = [Segment(s.text, s.prefix, s.suffix, s.role, s.paint) for s in segments]
    if width is not None:
        excess = sum(p.width for p in parts) - width
        for role, keep in order:
            for part in parts:
                if excess <= 0:
                    break
                if part.role != role or not part.text:
                    continue
                text_w = display_width(part.text)
                target = max(keep, text_w - excess)
                if target >= text_w:
                    continue
                before = part.width
                part.text = cut(part.text, target) if target > 0 else ""
                excess -= before - part.width
        if excess > 0:
            _cut_line(parts, width)
    out = []
    for part in parts:
        if part.role is not None and not part.text:
            continue
        text = part.paint(part.text) if part.paint is not None and part.text else part.text
        out.append(f"{part.prefix}{text}{part.suffix}")
    return "".join(out)


def _cut_line(parts: list[Segment], width: int) -> None:
    """Cut the segments so the whole line is at most `width` columns, the last one with an ellipsis."""
    left = width
    for index, part in enumerate(parts):
        if part.role is not None and not part.text:
            continue
        need = part.width
        if need <= left:
            left -= need
            continue
        # this segment overflows: keep what fits of prefix + text + suffix, drop the rest
        whole = cut(part.prefix + part.text + part.suffix, left)
        prefix_w = display_width(part.prefix)
        if display_width(whole) <= prefix_w:
            part.prefix, part.text, part.suffix = whole, "", ""
            part.role = None
        else:
            part.text = whole[len(part.prefix):]
            part.prefix, part.suffix = part.prefix, ""
        for rest in parts[index + 1:]:
            rest.prefix = rest.text = rest.suffix = ""
            rest.role = None
        return


def fit(text: str, width: int | None) -> str:
    """One plain line within `width` columns (unchanged when width is None: a pipe)."""
    return text if width is None else cut(text, width)
