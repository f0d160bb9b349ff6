"""Pure diffing of two snapshots into watch events (SPEC: added, changed, removed, source)."""

from __future__ import annotations

from typing import Any, Iterable

from arrctl.model import Row, SourceResult

# duration_s and extra move on every refresh of a running item; a change there is not news
DIFF_FIELDS: tuple[str, ...] = (
    "status", "raw_status", "region", "name", "created", "started", "finished", "message", "url",
)

Event = dict[str, Any]


def diff_rows(source: str, old: dict[str, Row], new: Iterable[Row], ts: str, *,
              removals: bool = True) -> list[Event]:
    """Events turning `old` (id -> row) into `new`: added and changed in new's order, then removed."""
    events: list[Event] = []
    seen: set[str] = set()
    for row in new:
        row_id = row["id"]
        seen.add(row_id)
        before = old.get(row_id)
        if before is None:
            events.append({"type": "added", "ts": ts, "source": source, "id": row_id, "row": row})
            continue
        changes = {f: [before.get(f), row.get(f)] for f in DIFF_FIELDS if before.get(f) != row.get(f)}
        if changes:
            events.append({"type": "changed", "ts": ts, "source": source, "id": row_id,
                           "row": row, "changes": changes})
    if removals:
        for row_id, before in old.items():
            if row_id not in seen:
                events.append({"type": "removed", "ts": ts, "source": source, "id": row_id, "row": before})
    return events


def diff_source_state(previous: SourceResult | None, current: SourceResult, ts: str) -> Event | None:
    """A `source` event when a source's state changes (and on the first refresh if it is not ok)."""
    before = previous.state if previous is not None else "ok"
    if before == current.state and (current.state == "ok" or previous is not None):
        return None
    record = current.record()
    return {"type": record.pop("type"), "ts": ts, **record}


class Differ:
    """Remembers the previous snapshot of each source and yields what changed."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Row]] = {}
        self.results: dict[str, SourceResult] = {}

    def update(self, results: dict[str, SourceResult], ts: str) -> list[Event]:
        """Events for this refresh; rows shown from memory never count as removals."""
        events: list[Event] = []
        for source, result in results.items():
            state_event = diff_source_state(self.results.get(source), result, ts)
            if state_event is not None:
                events.append(state_event)
            complete = result.state == "ok"
            old = self.rows.get(source, {})
            events.extend(diff_rows(source, old, result.rows, ts, removals=complete))
            current = {row["id"]: row for row in result.rows}
            if not complete:
                current = {**old, **current}
            self.rows[source] = current
            self.results[source] = result
        return events
