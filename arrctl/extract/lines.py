"""A log's lines as the scanner reads them, and the candidates it makes of them.

`Lines` normalises each line once and only when asked; a `Candidate` is one line that may be the
root error (or a success statement), labelled by a rule and scored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from arrctl.extract.ingest import LogLine, normalise
from arrctl.extract.rules import Kind, Rule

# How the level a line was printed at moves its score.
LEVEL_ADJUST = {"FATAL": 0.5, "ERROR": 0.25, "WARNING": -2.0, "INFO": -1.6, "DEBUG": -2.0}


@dataclass
class Candidate:
    """A line that may be the root error (or a success statement), labelled and scored."""

    line: int
    kind: Kind
    rule: Rule | None
    category: str | None
    text: str
    score: float
    match: re.Match[str] | None = None
    block_end: int | None = None  # the last line of its traceback, for a traceback's exception


class Lines:
    """The log's lines with their normalised forms, computed once and only when needed."""

    def __init__(self, raw: Sequence[str], levels: Sequence[str | None] | None = None) -> None:
        self.raw = raw
        self.levels = levels
        self._norm: list[LogLine | None] = [None] * len(raw)

    def __len__(self) -> int:
        return len(self.raw)

    def norm(self, i: int) -> LogLine:
        """Line i normalised (prefixes and escapes removed, level read)."""
        cached = self._norm[i]
        if cached is None:
            cached = self._norm[i] = normalise(self.raw[i], self._entry_level(i))
        return cached

    def body(self, i: int) -> str:
        """The text of line i as the rules see it."""
        return self.norm(i).text

    def _entry_level(self, i: int) -> str | None:
        # A LogEntry's severity says little: Cloud Run and Vertex file all of stderr (tqdm bars,
        # Python logging at INFO) as ERROR. Only WARNING is kept, as a hint, never ERROR.
        if self.levels is None or i >= len(self.levels):
            return None
        return "WARNING" if self.levels[i] == "WARNING" else None
