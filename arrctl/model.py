"""Plain data shared by every layer: sources, rows, results, timestamps."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Mapping, TypedDict

from arrctl.kinds import ErrorKind, SourceState

SOURCES: tuple[str, ...] = ("runner", "builds", "vertex", "active", "completed")
WANDB_SOURCES: tuple[str, ...] = ("active", "completed")  # the two views of W&B runs

STATUSES: tuple[str, ...] = (
    "QUEUED", "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMEOUT", "UNKNOWN",
)
# The category of a failure's root error (SPEC, `explain`): one word each.
CATEGORIES: tuple[str, ...] = (
    "oom", "quota", "capacity", "preempted", "permission", "auth", "not_found", "invalid_config",
    "timeout", "network", "service", "distributed", "dependency", "build", "code", "exit", "unknown",
)
ACTIVE_STATUSES = frozenset({"QUEUED", "PENDING", "RUNNING"})
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "TIMEOUT"})

ROW_KEYS: tuple[str, ...] = (
    "source", "id", "status", "raw_status", "region", "name", "created", "started",
    "finished", "duration_s", "message", "category", "url", "links", "extra",
)


class TerminalFact(TypedDict, total=False):
    """What an item's logs said once it ended (or what its platform said, when they said nothing):
    sent by a worker, kept by the store for good, and applied to the item's rows by `apply_facts`."""

    source: str
    id: str
    status: str
    verdict: str  # failed | succeeded | unknown
    message: str | None
    rule: str | None
    jobs: int | None
    line: int | None
    finished: str | None
    category: str | None
    links: dict[str, Any]
    first_seen: float  # when the store first kept it


class Row(TypedDict):
    """One item of a source, normalised; every key always present (None when absent)."""

    source: str
    id: str
    status: str
    raw_status: str | None
    region: str | None
    name: str | None
    created: str | None
    started: str | None
    finished: str | None
    duration_s: float | None
    message: str | None
    category: str | None
    url: str | None
    links: dict[str, Any]
    extra: dict[str, Any]


def make_row(source: str, id: str, status: str, **fields: Any) -> Row:
    """A Row with every key present; unknown keys are a programming error."""
    unknown = set(fields) - set(ROW_KEYS)
    if unknown:
        raise TypeError(f"unknown row fields: {sorted(unknown)}")
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {STATUSES}")
    row: dict[str, Any] = {key: None for key in ROW_KEYS}
    row.update(fields)
    row["source"], row["id"], row["status"] = source, id, status
    if row["extra"] is None:
        row["extra"] = {}
    if row["links"] is None:
        row["links"] = {}
    return row  # type: ignore[return-value]


def iso_z(value: Any) -> str | None:
    """RFC 3339 UTC with a trailing Z, from a datetime, epoch seconds or an RFC 3339 string."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        value = _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
    elif isinstance(value, str):
        value = parse_time(value)
        if value is None:
            return None
    if not isinstance(value, _dt.datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    value = value.astimezone(_dt.timezone.utc)
    if value.year < 1971:  # protobuf's "unset" timestamp is the epoch
        return None
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str) -> _dt.datetime | None:
    """Parse RFC 3339 (any precision, Z or offset) into an aware datetime; None if unparseable."""
    if not text:
        return None
    text = text.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, sep, tail = text.partition(".")
    if sep:  # Python wants at most 6 fractional digits
        digits = ""
        while tail and tail[0].isdigit():
            digits, tail = digits + tail[0], tail[1:]
        text = f"{head}.{digits[:6] or '0'}{tail}"
    try:
        parsed = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed


def epoch(text: str | None) -> float | None:
    """Epoch seconds of an RFC 3339 string, or None."""
    parsed = parse_time(text) if text else None
    return parsed.timestamp() if parsed else None


def newest_first(rows: list[Row], limit: int | None = None) -> list[Row]:
    """Rows newest first by creation time, ties by the larger id first, cut to `limit` (None: all).

    The one order of every list: a source's own rows and the merge of a cut-off worker's parts
    are ordered alike, so a partial refresh never shows the same rows in another order.
    """
    ordered = sorted(rows, key=lambda r: (epoch(r["created"]) or 0.0, r["id"]), reverse=True)
    return ordered[:limit] if limit is not None else ordered


def duration_between(start: str | None, end: str | None) -> float | None:
    """Seconds from start to end (RFC 3339 strings), rounded to 0.1 s; None if either is missing."""
    a, b = epoch(start), epoch(end)
    if a is None or b is None:
        return None
    return round(max(0.0, b - a), 1)


@dataclass
class SourceResult:
    """What one refresh learned about one source."""

    source: str
    state: SourceState = SourceState.OK
    rows: list[Row] = field(default_factory=list)
    took_s: float = 0.0
    error: str | None = None
    error_kind: ErrorKind | None = None  # what the error is about (None when ok)
    stale_s: float | None = None  # age of rows shown from memory when this refresh failed
    facts: list[TerminalFact] = field(default_factory=list)  # terminal facts, for memory (Emitter.facts)
    results: list[dict[str, Any]] = field(default_factory=list)  # a look-up's findings (Emitter.results)
    calls: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # planned parts (regions) that never answered
    from_memory: set[str] = field(default_factory=set)  # ids of rows shown from the last good refresh
    log_reads: list[dict[str, Any]] = field(default_factory=list)  # Emitter.log_reads reports
    hidden: list[Row] = field(default_factory=list)  # rows the command's filters left out (filters.apply)

    def record(self) -> dict[str, Any]:
        """The NDJSON `source` record of SPEC."""
        return {
            "type": "source", "source": self.source, "state": str(self.state),
            "rows": len(self.rows), "took_s": round(self.took_s, 3), "error": self.error,
            "stale_s": None if self.stale_s is None else round(self.stale_s, 1),
        }


def apply_facts(rows: list[Row], facts: Mapping[str, TerminalFact], from_logs: bool = True) -> list[Row]:
    """Rows of ended items with what their fact says (pure): its message (for a source that reads
    logs, `from_logs`, it beats the platform's words; for the others it only fills a gap), the
    category of its analysis, the job count and the links its logs named; a row its fact explains
    is no longer marked `extra.logs_unread`. A fact of another status (the item ran again) is not
    this row's. The one place a terminal fact is applied: by a worker to the rows it just explained,
    by the refresh to the rows memory explains (refresh.fill_from_memory)."""
    out: list[Row] = []
    for row in rows:
        fact = facts.get(row["id"])
        if fact is None or fact.get("status") not in (None, row["status"]):
            out.append(row)
            continue
        extra = {k: v for k, v in row["extra"].items() if k != "logs_unread"}
        if fact.get("jobs") is not None:
            extra["jobs"] = fact["jobs"]
        applied: Row = {**row, "extra": extra}  # type: ignore[typeddict-item]
        if fact.get("message") and (from_logs or not row["message"]):
            applied["message"] = fact["message"]
            if fact.get("category") and row["status"] in ("FAILED", "TIMEOUT"):
                applied["category"] = fact["category"]
        if fact.get("links"):
            applied["links"] = fact["links"]
        out.append(applied)
    return out


def by_id(facts: list[TerminalFact]) -> dict[str, TerminalFact]:
    """Facts keyed by their item's id."""
    return {fact["id"]: fact for fact in facts}
