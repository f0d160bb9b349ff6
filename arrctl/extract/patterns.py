"""What a regular expression's matches must start with, read from its parsed form (pure).

The normaliser tries some fifty prefix patterns on each line; most cannot match a line that
starts with `2` or `w`. Knowing each pattern's possible first characters lets it try only the
ones that can; the rule index tries the patterns anchored at a line's start as one (`re`'s own parser, `re._parser`, gives the parsed form; the analysis is
conservative: when in doubt, any character).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from re import _parser  # type: ignore[attr-defined]

ASCII = frozenset(chr(i) for i in range(128))
_CLASSES = {
    _parser.CATEGORY_DIGIT: frozenset("0123456789"),
    _parser.CATEGORY_WORD: frozenset(c for c in ASCII if c.isalnum() or c == "_"),
    _parser.CATEGORY_SPACE: frozenset(" \t\n\r\f\v"),
}
_ZERO_WIDTH = (_parser.AT, _parser.ASSERT, _parser.ASSERT_NOT)
_REPEATS = (_parser.MAX_REPEAT, _parser.MIN_REPEAT, _parser.POSSESSIVE_REPEAT)


def parsed(pattern: re.Pattern[str]) -> Any:
    """The pattern as `re`'s parser reads it."""
    return _parser.parse(pattern.pattern, pattern.flags)


def anchored_at_start(pattern: re.Pattern[str]) -> bool:
    """Whether every match of a pattern starts at the text's start (`^...` with no top-level
    alternative after it) and its flags are the default, so that it can join an alternation of
    such patterns (an inline `(?i)` is among the flags; a back-reference would not survive)."""
    if pattern.flags & ~re.UNICODE or "(?P=" in pattern.pattern:
        return False
    items = list(parsed(pattern))
    return bool(items) and items[0] == (_parser.AT, _parser.AT_BEGINNING)


def first_chars(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """The ASCII characters a match of the pattern can start with; None when it may start with
    any (or match the empty string). Non-ASCII starts are not answered: callers treat a line
    that starts with one as any."""
    if pattern.flags & re.IGNORECASE:
        return None
    chars, nullable = _sequence(parsed(pattern))
    return None if chars is None or nullable else chars


def _sequence(items: Iterable[tuple[Any, Any]]) -> tuple[frozenset[str] | None, bool]:
    """(first characters or None for any, whether it can match empty) of a parsed sequence."""
    found: set[str] = set()
    for op, arg in items:
        if op in _ZERO_WIDTH:
            continue  # a lookahead only narrows what follows: ignoring it is safe
        chars, nullable = _item(op, arg)
        if chars is None:
            return None, False
        found |= chars
        if not nullable:
            return frozenset(found), False
    return frozenset(found), True


def _item(op: Any, arg: Any) -> tuple[frozenset[str] | None, bool]:
    if op is _parser.LITERAL:
        return frozenset([chr(arg)]) & ASCII, False
    if op is _parser.IN:
        found: set[str] = set()
        for kind, value in arg:
            if kind is _parser.LITERAL:
                found.add(chr(value))
            elif kind is _parser.RANGE:
                found |= {chr(c) for c in range(value[0], min(value[1], 127) + 1)}
            elif kind is _parser.CATEGORY and value in _CLASSES:
                found |= _CLASSES[value]
            else:  # a negated set, another category: any
                return None, False
        return frozenset(found) & ASCII, False
    if op is _parser.SUBPATTERN:
        return _sequence(arg[-1])
    if op in _REPEATS:
        chars, nullable = _sequence(arg[2])
        return chars, nullable or arg[0] == 0
    if op is _parser.BRANCH:
        union: set[str] = set()
        empty = False
        for arm in arg[1]:
            chars, nullable = _sequence(arm)
            if chars is None:
                return None, False
            union |= chars
            empty = empty or nullable
        return frozenset(union), empty
    return None, False
