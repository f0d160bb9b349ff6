"""Row filters of `get`, `watch` and `check` (--status, --region, --since, --name, --user, --tag).

Pure: a filter is applied to what a refresh returned, after memory has seen everything (facts are
saved and rows remembered whatever is shown). Different flags must all match (AND); the values of
one flag, comma separated or repeated, are alternatives (OR). A row that lacks the field a flag
asks about (a region on a W&B run, a user on a Vertex AI job) does not match it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Iterable

from arrctl.config import ConfigError
from arrctl.model import STATUSES, Row, SourceResult, epoch

MAX_SINCE_S = 366 * 86400
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhdw]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


class FilterError(ConfigError):
    """A filter flag with a value that means nothing: one line naming the flag (exit 2; UNKNOWN for check)."""


@dataclass(frozen=True)
class RowFilter:
    """Which rows are shown; every field empty means all of them."""

    statuses: frozenset[str] = frozenset()
    """Normalised statuses (SPEC), any of them."""
    regions: frozenset[str] = frozenset()
    """Regions (lower case), any of them."""
    since_s: float | None = None
    """Created or finished within this many seconds."""
    names: tuple[str, ...] = ()
    """Globs matched against the id and the name, any of them."""
    users: frozenset[str] = frozenset()
    """W&B users (lower case), any of them."""
    tags: frozenset[str] = frozenset()
    """W&B tags, any of them."""

    @property
    def active(self) -> bool:
        """Whether anything is filtered at all."""
        return bool(self.statuses or self.regions or self.since_s is not None or self.names
                    or self.users or self.tags)

    def matches(self, row: Row, now: float) -> bool:
        """Whether the row passes every flag given."""
        if self.statuses and row["status"] not in self.statuses:
            return False
        if self.regions and (row["region"] or "").lower() not in self.regions:
            return False
        if self.since_s is not None:
            moments = [t for t in (epoch(row["created"]), epoch(row["finished"])) if t is not None]
            if not any(now - t <= self.since_s for t in moments):
                return False
        if self.names and not any(fnmatch.fnmatchcase(value, glob) for glob in self.names
                                  for value in (row["id"], row["name"]) if value):
            return False
        extra = row["extra"]
        if self.users and str(extra.get("user") or "").lower() not in self.users:
            return False
        if self.tags and not self.tags & {str(t) for t in extra.get("tags") or ()}:
            return False
        return True


def _items(values: Iterable[str]) -> list[str]:
    """The comma-separated items of a repeated flag, stripped, without blanks."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def parse_statuses(values: Iterable[str]) -> frozenset[str]:
    """`failed,timeout` → {FAILED, TIMEOUT} (any case); FilterError for a word that is not a status."""
    chosen = set()
    for item in _items(values):
        status = item.upper()
        if status not in STATUSES:
            raise FilterError(f"--status: {item!r} is not a status (expected one or more of: "
                              f"{', '.join(s.lower() for s in STATUSES)}, comma separated)")
        chosen.add(status)
    return frozenset(chosen)


def parse_duration(text: str, flag: str = "--since") -> float:
    """`30m`, `2h`, `3d`, `1h30m` → seconds; FilterError otherwise."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise FilterError(f"{flag}: {text!r} is not a duration (expected e.g. 90s, 30m, 2h, 3d or 1h30m)")
    seconds = sum(float(number) * UNITS[unit] for number, unit in _PART.findall(value))
    if not 0 < seconds <= MAX_SINCE_S:
        raise FilterError(f"{flag}: {text!r} is out of range (expected more than 0s and at most 366d)")
    return seconds


def parse_filter(*, status: Iterable[str] = (), region: Iterable[str] = (), since: str | None = None,
                 name: Iterable[str] = (), user: Iterable[str] = (), tag: Iterable[str] = ()) -> RowFilter:
    """The filter the flags describe (FilterError naming the flag for a bad value)."""
    for flag, values in (("--region", region), ("--name", name), ("--user", user), ("--tag", tag)):
        if any(not v.strip() for v in values):
            raise FilterError(f"{flag}: expected a value, got an empty string")
    return RowFilter(
        statuses=parse_statuses(status),
        regions=frozenset(r.lower() for r in _items(region)),
        since_s=parse_duration(since) if since is not None else None,
        names=tuple(n.strip() for n in name),
        users=frozenset(u.lower() for u in _items(user)),
        tags=frozenset(_items(tag)),
    )


def apply(results: dict[str, SourceResult], select: RowFilter, now: float) -> dict[str, SourceResult]:
    """Each result with only the rows that match; the others in its `hidden` (new objects, same order)."""
    if not select.active:
        return results
    out: dict[str, SourceResult] = {}
    for source, result in results.items():
        shown: list[Row] = []
        hidden: list[Row] = []
        for row in result.rows:
            (shown if select.matches(row, now) else hidden).append(row)
        out[source] = dataclasses.replace(result, rows=shown, hidden=hidden)
    return out


def hidden_count(results: dict[str, SourceResult]) -> int:
    """How many rows the filters hid, over every source."""
    return sum(len(r.hidden) for r in results.values())


def _before(event: dict[str, Any]) -> Row:
    """The row a `changed` event started from (its changed fields set back)."""
    row = dict(event["row"])
    for key, (old, _new) in event.get("changes", {}).items():
        row[key] = old
    return row  # type: ignore[return-value]


def select_events(events: list[dict[str, Any]], select: RowFilter, now: float) -> list[dict[str, Any]]:
    """The watch events a filter lets through: those whose row matches, before or after the change.

    A run watched with `--status running` that fails shows as RUNNING → FAILED, not as gone; a
    source's own events always pass.
    """
    if not select.active:
        return events
    out = []
    for event in events:
        if "row" not in event:
            out.append(event)
        elif select.matches(event["row"], now) or (event["type"] == "changed" and select.matches(_before(event), now)):
            out.append(event)
    return out
