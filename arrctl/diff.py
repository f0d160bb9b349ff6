"""Pure diffing of two snapshots into watch events (SPEC: added, changed, removed, source)."""

from __future__ import annotations

from typing import Any, Iterable

from arrctl.kinds import SourceState
from arrctl.model import Row, SourceResult

# duration_s and extra move on every refresh of a running item; a change there is not news
DIFF_FIELDS: tuple[str, ...] = (
    "status", "raw_status", "region", "name", "created", "started", "finished", "message", "url",
)

Event = dict[str, Any]

# An item that leaves one source for another within one refresh is one `changed` event on the
# source it moved to (SPEC "watch events"): a W&B run that ends leaves `active` for `completed`.
MOVES: tuple[tuple[str, str], ...] = (("active", "completed"),)


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


def merge_moves(events: list[Event]) -> list[Event]:
    """A `removed` from one source and an `added` of the same id to the source it moves to: one `changed`.

    The `changed` event takes the place of the `added` one, on the new source, with the fields
    that differ between the last row of the old source and the new row, and `"source": [old, new]`.
    """
    for old_source, new_source in MOVES:
        removed = {e["id"]: e for e in events if e["type"] == "removed" and e["source"] == old_source}
        moved = {e["id"] for e in events if e["type"] == "added" and e["source"] == new_source and e["id"] in removed}
        out: list[Event] = []
        for event in events:
            if event["type"] == "removed" and event["source"] == old_source and event["id"] in moved:
                continue
            if event["type"] == "added" and event["source"] == new_source and event["id"] in moved:
                event = _moved(removed[event["id"]], event)
            out.append(event)
        events = out
    return events


def _moved(removed: Event, added: Event) -> Event:
    """The one `changed` event of an item that moved from `removed`'s source to `added`'s."""
    old_row, new_row = removed["row"], added["row"]
    changes = {f: [old_row.get(f), new_row.get(f)] for f in DIFF_FIELDS if old_row.get(f) != new_row.get(f)}
    changes["source"] = [removed["source"], added["source"]]
    return {"type": "changed", "ts": added["ts"], "source": added["source"], "id": added["id"],
            "row": new_row, "changes": changes}


def diff_source_state(previous: SourceResult | None, current: SourceResult, ts: str) -> Event | None:
    """A `source` event when a source's state changes (and on the first refresh if it is not ok)."""
    before = previous.state if previous is not None else SourceState.OK
    if before == current.state and (current.state == SourceState.OK or previous is not None):
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
            complete = result.state == SourceState.OK
            old = self.rows.get(source, {})
            events.extend(diff_rows(source, old, result.rows, ts, removals=complete))
            current = {row["id"]: row for row in result.rows}
            if not complete:
                current = {**old, **current}
            self.rows[source] = current
            self.results[source] = result
        return merge_moves(events)
