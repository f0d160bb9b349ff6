"""Pure rendering: rows, events and results into text lines or NDJSON. No I/O here."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable

import orjson

from arrctl.kinds import SourceState
from arrctl import columns
from arrctl.model import ACTIVE_STATUSES, Row, SourceResult, epoch
from arrctl.sanitize import printable
from arrctl.textfit import Segment, cut, display_width, fit, fit_segments, pad

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
          width: int | None = None, *, source: str | None = None, wide: bool = False, headers: bool = True,
          hidden: int = 0) -> list[str]:
    """An aligned table: a title line, a header and one line per row; "(none)" when empty.

    STARTED says how long ago; `wide` (-o wide) gives the time itself and adds the columns of
    `columns.wide` for `source`, every cell whole. With `width` (a terminal's columns) every line
    of the default table fits it: the MESSAGE column shrinks first, then NAME, and a line still too
    wide is cut. Without it (a pipe) every cell is whole. `headers=False` (--no-headers): the rows
    alone. `hidden`: how many rows filters left out, said under the rows.
    """
    lines = [style._paint(fit(title, width), None, bold=True)] if headers else []
    said = f"  ({hidden} hidden by filters)" if hidden else None
    if not rows:
        return lines + [said or "  (none)", ""] if headers else []
    if wide:
        width = None
    added = columns.wide(source or rows[0]["source"], rows) if wide else []
    show_name = any(display_name(r) for r in rows)
    head = ["STATUS", "ID"] + (["NAME"] if show_name else []) + ["REGION", "STARTED", "TIME"] \
        + [h for h, _ in added] + ["MESSAGE"]
    cells: list[list[str]] = []
    for r in rows:
        started = r["started"] or r["created"]
        cells.append(
            [r["status"], clean(r["id"])] + ([clean(display_name(r) or "")] if show_name else [])
            + [clean(r["region"] or "-"), local_stamp(started, tz) if wide else columns.age_of(started, now),
               human_duration(live_duration(r, now))] + [clean(cell(r, now)) for _, cell in added]
            + [clean(r["message"])]
        )
    widths = [max(display_width(h), *(display_width(c[i]) for c in cells)) for i, h in enumerate(head)]
    if width is not None:
        widths = _shrink_columns(widths, width, name=2 if show_name else None)
        cells = [[cut(v, w) for v, w in zip(c, widths)] for c in cells]
        head = [cut(h, w) for h, w in zip(head, widths)]

    def line(values: list[str], paint: Any = None) -> str:
        padded = [pad(v, w) for v, w in zip(values, widths)]
        rest = "  ".join(padded[1:]).rstrip()
        return fit_segments([Segment(padded[0], prefix="  ", paint=paint), Segment(rest, prefix="  ")], width)

    if headers:
        lines.append(line(head).rstrip())
    for c in cells:
        lines.append(line(c, lambda text, status=c[0]: style.status(status, text)))
    if not headers:
        return lines
    return lines + ([fit(said, width)] if said else []) + [""]


def _shrink_columns(widths: list[int], width: int, name: int | None) -> list[int]:
    """Column widths that fit `width`: the last (MESSAGE) column shrinks first, then NAME.

    A table line is two spaces, then the cells with two spaces between them.
    """
    widths = list(widths)
    total = 2 + sum(widths) + 2 * (len(widths) - 1)
    message = len(widths) - 1
    for column, keep in ((message, 20), (name, 10), (message, 0), (name, 0)):
        excess = total - width
        if excess <= 0 or column is None or widths[column] <= keep:
            continue
        give = min(excess, widths[column] - keep)
        widths[column] -= give
        total -= give
    return widths


def source_note(result: SourceResult, style: Style, width: int | None = None) -> str | None:
    """The status line of a source that failed, timed out or is shown from memory."""
    if result.state == SourceState.OK:
        return None
    text = f"! {result.source}: {result.state}: {clean(result.error)}"
    if result.stale_s is not None:
        text += f" (showing {_stale_what(result)} from {human_duration(result.stale_s)} ago)"
    elif not result.rows and not result.hidden:
        text += " (no earlier rows to show)"
    return style.warn(fit(text, width))


def _stale_what(result: SourceResult) -> str:
    """Which rows come from memory: all of them, or those of the parts that did not answer."""
    fresh = len(result.rows) - len(result.from_memory)
    if not result.from_memory or fresh <= 0:
        return "rows"
    parts = ", ".join(result.missing[:3]) + (f" and {len(result.missing) - 3} more" if len(result.missing) > 3 else "")
    return f"the rows of {parts}" if parts else f"{len(result.from_memory)} rows"


def tables(results: dict[str, SourceResult], now: float, style: Style, tz: _dt.tzinfo | None = None,
           width: int | None = None, *, wide: bool = False, headers: bool = True) -> list[str]:
    """The whole `get` text output: one table per source (builds as two), then status lines.

    `width`: the terminal's columns, which every line fits; None in a pipe (lines are whole).
    `wide` (-o wide) and `headers` as for `table`; without headers the status lines are left out
    (see `notes`: the CLI writes them to stderr, so stdout is rows alone).
    """
    lines: list[str] = []
    for source, result in results.items():
        hidden = dict(_table_groups(source, result.hidden))
        for key, rows in _table_groups(source, result.rows):
            title = TITLES.get(key, key)
            if result.state != SourceState.OK:
                old = ""
                if result.stale_s is not None:
                    partly = "partly " if 0 < len(result.from_memory) < len(result.rows) else ""
                    old = f", {partly}{human_duration(result.stale_s)} old"
                title += f"  [{result.state}{old}]"
            lines.extend(table(title, rows, now, style, tz, width, source=source, wide=wide, headers=headers,
                               hidden=len(hidden.get(key, ()))))
    return lines + notes(results, style, width) if headers else lines


def notes(results: dict[str, SourceResult], style: Style, width: int | None = None) -> list[str]:
    """The status line of each source that failed, timed out or is shown from memory."""
    return [n for n in (source_note(r, style, width) for r in results.values()) if n]


def get_text(results: dict[str, SourceResult], now: float, style: Style, *, shape: str | None = None,
             headers: bool = True, width: int | None = None, tz: _dt.tzinfo | None = None) -> tuple[list[str], list[str]]:
    """`get`'s text output as (stdout lines, stderr lines): the tables with their status lines, or,
    when stdout carries bare data (`-o name`, --no-headers), the data alone and the status lines apart."""
    if shape == "name":
        return names(results), notes(results, Style(False))
    lines = tables(results, now, style, tz, width, wide=shape == "wide", headers=headers)
    return lines, [] if headers else notes(results, Style(False))


def names(results: dict[str, SourceResult]) -> list[str]:
    """`get -o name`: the id of every row shown, one per line, in table order."""
    return [clean(row["id"]) for source, result in results.items()
            for _key, rows in _table_groups(source, result.rows) for row in rows]


def event_line(event: dict[str, Any], now: float, style: Style, tz: _dt.tzinfo | None = None,
               width: int | None = None) -> str:
    """One watch line: time, source, what changed, and the message of a failure.

    With `width` (a terminal's columns) the line fits it: the message shrinks first, then the
    name, then the line is cut. In a pipe (`width` None) it is whole.
    """
    clock = local_clock(event.get("ts"), tz)
    kind = event["type"]
    if kind == "heartbeat":
        states = " ".join(f"{s}={st}" for s, st in event["sources"].items())
        text = f"{clock}  · heartbeat  cycle {event['cycle']}, {event['running']} running"
        return style.dim(fit(f"{text}; {states}" if states else text, width))
    source = f"{event['source']:<9}"
    if kind == "source":
        if event["state"] == "ok":
            return fit(f"{clock}  {source} ✓ answering again", width)
        note = f"! {event['state']}: {clean(event.get('error'))}"
        if event.get("stale_s") is not None:
            note += f" (showing rows from {human_duration(event['stale_s'])} ago)"
        return fit_segments([Segment(f"{clock}  {source} "), Segment(note, paint=style.warn)], width)
    row: Row = event["row"]
    name = display_name(row)
    head = [Segment(f"{clock}  {source} "), Segment(clean(row["id"]))]
    if name:
        head.append(Segment(clean(name), prefix=" (", suffix=")", role="name"))
    if kind == "removed":
        return fit_segments([head[0], Segment("- "), *head[1:],
                             Segment(f"gone (was {row['status']})", prefix=" ", paint=style.dim)], width)
    marker = "+ " if kind == "added" else "~ "
    segments = [head[0], Segment(marker), *head[1:]]
    if kind == "changed" and "status" in event["changes"]:
        old, new = event["changes"]["status"]
        segments += [Segment(old, prefix="  ", paint=style.status), Segment(new, prefix=" → ", paint=style.status)]
    else:
        segments.append(Segment(row["status"], prefix="  ", paint=style.status))
    detail = _detail(row, now)
    if kind == "changed" and "status" not in event["changes"]:
        detail = ", ".join(f"{k}: {clean(v[1])}" for k, v in event["changes"].items() if k != "message") or detail
    if detail:
        segments.append(Segment(detail, prefix="  ", paint=style.dim))
    if row["message"] and (row["status"] in ("FAILED", "SUCCEEDED", "TIMEOUT", "CANCELLED")):
        segments.append(Segment(clean(row["message"]), prefix="  ", role="message"))
    return fit_segments(segments, width)


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
