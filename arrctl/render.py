"""Pure rendering: rows, events and results into text lines or NDJSON. No I/O here."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable

import orjson

from arrctl.model import ACTIVE_STATUSES, Row, SourceResult, epoch
from arrctl.sanitize import printable

TITLES: dict[str, str] = {
    "runner": "Runner executions",
    "builds.active": "Active builds",
    "builds.recent": "Recent builds",
    "vertex": "Vertex AI custom jobs",
    "active": "Active W&B runs",
    "completed": "Completed W&B runs",
}
STATUS_COLORS = {
    "FAILED": "red", "SUCCEEDED": "green", "RUNNING": "cyan", "QUEUED": "yellow",
    "PENDING": "yellow", "CANCELLED": "magenta", "TIMEOUT": "magenta", "UNKNOWN": None,
}
ACTIVE_VERB = {"RUNNING": "running", "PENDING": "pending", "QUEUED": "queued"}


class Style:
    """Colour on or off (on only for a TTY without NO_COLOR; decided by the CLI)."""

    def __init__(self, color: bool = False) -> None:
        self.color = color

    def _paint(self, text: str, fg: str | None, bold: bool = False, dim: bool = False) -> str:
        if not self.color or (fg is None and not bold and not dim):
            return text
        import click

        return click.style(text, fg=fg, bold=bold or None, dim=dim or None)  # False would emit a reset

    def status(self, status: str, text: str | None = None) -> str:
        """The status word, coloured by meaning."""
        return self._paint(text if text is not None else status, STATUS_COLORS.get(status), bold=status == "FAILED")

    def dim(self, text: str) -> str:
        """Secondary text."""
        return self._paint(text, None, dim=True)

    def warn(self, text: str) -> str:
        """A warning."""
        return self._paint(text, "yellow", bold=True)


def ndjson(obj: Any) -> bytes:
    """One compact JSON object and a newline (orjson escapes control characters as JSON does)."""
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


def row_record(row: Row) -> dict[str, Any]:
    """The NDJSON `row` record of SPEC: type first, then every row key."""
    return {"type": "row", **row}


def row_line(row: Row) -> bytes:
    """The NDJSON `row` record of a row, serialised without copying the row (the hot path of --json)."""
    return b'{"type":"row",' + orjson.dumps(row)[1:] + b"\n"


def human_duration(seconds: float | None) -> str:
    """45s, 12m, 3h05m, 2d04h: short and readable at a glance."""
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"


def _local(seconds: float, tz: _dt.tzinfo | None) -> _dt.datetime:
    """The moment in `tz`, or in local time with the UTC offset in force then (DST-correct)."""
    moment = _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc)
    return moment.astimezone(tz) if tz is not None else moment.astimezone()


def local_clock(ts: str | None, tz: _dt.tzinfo | None = None) -> str:
    """HH:MM:SS in local time (or `tz`) of an RFC 3339 string."""
    seconds = epoch(ts)
    if seconds is None:
        return "--:--:--"
    return _local(seconds, tz).strftime("%H:%M:%S")


def local_stamp(ts: str | None, tz: _dt.tzinfo | None = None) -> str:
    """MM-DD HH:MM in local time (or `tz`), for table cells."""
    seconds = epoch(ts)
    if seconds is None:
        return "-"
    return _local(seconds, tz).strftime("%m-%d %H:%M")


def live_duration(row: Row, now: float) -> float | None:
    """How long the item has run (until now for active items, until it finished otherwise)."""
    start = epoch(row["started"]) or epoch(row["created"])
    if row["status"] in ACTIVE_STATUSES and start is not None:
        if row["status"] == "QUEUED" and epoch(row["created"]) is not None:
            start = epoch(row["created"])
        return max(0.0, now - start)  # type: ignore[operator]
    return row["duration_s"]


def clean(text: Any, limit: int | None = None) -> str:
    """Remote text made safe for a terminal, on one line, optionally cut to `limit`."""
    if text is None:
        return ""
    out = printable(str(text))
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


def display_name(row: Row) -> str | None:
    """The row's name when it tells more than its id (a runner row's name is just its job)."""
    name = row["name"]
    if not name or name == row["id"] or name == row["extra"].get("job"):
        return None
    return name


def _table_groups(source: str, rows: list[Row]) -> list[tuple[str, list[Row]]]:
    if source == "builds":
        active = [r for r in rows if r["extra"].get("table", "active" if r["status"] in ACTIVE_STATUSES else "recent") == "active"]
        recent = [r for r in rows if r not in active]
        return [("builds.active", active), ("builds.recent", recent)]
    return [(source, rows)]


def table(title: str, rows: list[Row], now: float, style: Style, tz: _dt.tzinfo | None = None,
          message_width: int = 80) -> list[str]:
    """An aligned table: a title line, a header and one line per row; "(none)" when empty."""
    lines = [style._paint(title, None, bold=True)]
    if not rows:
        return lines + ["  (none)", ""]
    show_name = any(display_name(r) for r in rows)
    headers = ["STATUS", "ID"] + (["NAME"] if show_name else []) + ["REGION", "STARTED", "TIME", "MESSAGE"]
    cells: list[list[str]] = []
    for r in rows:
        cells.append(
            [r["status"], clean(r["id"], 40)] + ([clean(display_name(r) or "", 32)] if show_name else [])
            + [clean(r["region"] or "-"), local_stamp(r["started"] or r["created"], tz),
               human_duration(live_duration(r, now)), clean(r["message"], message_width)]
        )
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for c in cells:
        padded = [c[0].ljust(widths[0])] + [v.ljust(w) for v, w in zip(c[1:], widths[1:])]
        padded[0] = style.status(c[0], padded[0])
        lines.append("  " + "  ".join(padded).rstrip())
    return lines + [""]


def source_note(result: SourceResult, style: Style) -> str | None:
    """The status line of a source that failed, timed out or is shown from memory."""
    if result.state == "ok":
        return None
    text = f"! {result.source}: {result.state}: {clean(result.error, 300)}"
    if result.stale_s is not None:
        text += f" (showing {_stale_what(result)} from {human_duration(result.stale_s)} ago)"
    elif not result.rows:
        text += " (no earlier rows to show)"
    return style.warn(text)


def _stale_what(result: SourceResult) -> str:
    """Which rows come from memory: all of them, or those of the parts that did not answer."""
    fresh = len(result.rows) - len(result.from_memory)
    if not result.from_memory or fresh <= 0:
        return "rows"
    parts = ", ".join(result.missing[:3]) + (f" and {len(result.missing) - 3} more" if len(result.missing) > 3 else "")
    return f"the rows of {parts}" if parts else f"{len(result.from_memory)} rows"


def tables(results: dict[str, SourceResult], now: float, style: Style, tz: _dt.tzinfo | None = None) -> list[str]:
    """The whole `get` text output: one table per source (builds as two), then status lines."""
    lines: list[str] = []
    for source, result in results.items():
        for key, rows in _table_groups(source, result.rows):
            title = TITLES.get(key, key)
            if result.state != "ok":
                old = ""
                if result.stale_s is not None:
                    partly = "partly " if 0 < len(result.from_memory) < len(result.rows) else ""
                    old = f", {partly}{human_duration(result.stale_s)} old"
                title += f"  [{result.state}{old}]"
            lines.extend(table(title, rows, now, style, tz))
    notes = [n for n in (source_note(r, style) for r in results.values()) if n]
    return lines + notes


def event_line(event: dict[str, Any], now: float, style: Style, tz: _dt.tzinfo | None = None,
               width: int | None = None) -> str:
    """One watch line: time, source, what changed, and the message of a failure.

    With `width` (a terminal's columns) the message is cut so the line fits; in a pipe it is whole.
    """
    clock = local_clock(event.get("ts"), tz)
    kind = event["type"]
    if kind == "heartbeat":
        states = " ".join(f"{s}={st}" for s, st in event["sources"].items())
        text = f"{clock}  · heartbeat  cycle {event['cycle']}, {event['running']} running"
        return style.dim(f"{text}; {states}" if states else text)
    source = f"{event['source']:<9}"
    if kind == "source":
        if event["state"] == "ok":
            return f"{clock}  {source} ✓ answering again"
        note = f"! {event['state']}: {clean(event.get('error'), 200)}"
        if event.get("stale_s") is not None:
            note += f" (showing rows from {human_duration(event['stale_s'])} ago)"
        return f"{clock}  {source} " + style.warn(note)
    row: Row = event["row"]
    ident = clean(row["id"], 40)
    if display_name(row):
        ident += f" ({clean(display_name(row), 30)})"
    if kind == "removed":
        return f"{clock}  {source} - {ident} " + style.dim(f"gone (was {row['status']})")
    if kind == "changed" and "status" in event["changes"]:
        old, new = event["changes"]["status"]
        status, plain_status = f"{style.status(old)} → {style.status(new)}", f"{old} → {new}"
    else:
        status, plain_status = style.status(row["status"]), row["status"]
    marker = "+" if kind == "added" else "~"
    detail = _detail(row, now)
    if kind == "changed" and "status" not in event["changes"]:
        detail = ", ".join(f"{k}: {clean(v[1], 60)}" for k, v in event["changes"].items() if k != "message") or detail
    parts = [f"{clock}  {source} {marker} {ident}  {status}"]
    used = len(clock) + 2 + len(source) + 3 + len(ident) + 2 + len(plain_status)
    if detail:
        parts.append(style.dim(detail))
        used += 2 + len(detail)
    if row["message"] and (row["status"] in ("FAILED", "SUCCEEDED", "TIMEOUT", "CANCELLED")):
        limit = 300 if width is None else max(20, width - used - 2)
        parts.append(clean(row["message"], limit))
    return "  ".join(parts)


def _detail(row: Row, now: float) -> str:
    verb = ACTIVE_VERB.get(row["status"])
    bits = []
    elapsed = live_duration(row, now) if verb else None
    if elapsed is not None:
        bits.append(f"{verb} {human_duration(elapsed)}")
    if row["region"]:
        bits.append(clean(row["region"]))
    return ", ".join(bits)


def heartbeat_event(ts: str, cycle: int, results: dict[str, SourceResult]) -> dict[str, Any]:
    """The SPEC heartbeat record."""
    running = sum(1 for r in results.values() for row in r.rows if row["status"] == "RUNNING")
    return {"type": "heartbeat", "ts": ts, "cycle": cycle,
            "sources": {s: r.state for s, r in results.items()}, "running": running}


def now_iso(now: float) -> str:
    """RFC 3339 UTC with Z, millisecond precision."""
    return _dt.datetime.fromtimestamp(now, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ndjson_records(results: dict[str, SourceResult]) -> Iterable[bytes]:
    """`get --json`: every row record, then one source record per source, as NDJSON lines."""
    for result in results.values():
        for row in result.rows:
            yield row_line(row)
    for result in results.values():
        yield ndjson(result.record())
