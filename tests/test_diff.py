"""Pure diffing of snapshots into watch events."""

from __future__ import annotations

from arrctl.diff import Differ, diff_rows
from arrctl.model import SourceResult, make_row

TS = "2026-11-22T05:00:00.000Z"


def row(id: str, status: str = "RUNNING", **kw):
    return make_row("vertex", id, status, region="us-central1", **kw)


def test_first_refresh_adds_every_row_in_order():
    events = diff_rows("vertex", {}, [row("a"), row("b")], TS)
    assert [(e["type"], e["id"]) for e in events] == [("added", "a"), ("added", "b")]
    assert events[0] == {"type": "added", "ts": TS, "source": "vertex", "id": "a", "row": row("a")}


def test_changed_fields_are_old_new_pairs_and_duration_is_not_news():
    old = {"a": row("a", duration_s=10.0), "b": row("b")}
    new = [row("a", "FAILED", duration_s=99.0, message="quota"), row("b", duration_s=50.0)]
    events = diff_rows("vertex", old, new, TS)
    assert events == [{"type": "changed", "ts": TS, "source": "vertex", "id": "a", "row": new[0],
                       "changes": {"status": ["RUNNING", "FAILED"], "message": [None, "quota"]}}]


def test_removed_carries_the_last_known_row():
    events = diff_rows("vertex", {"a": row("a")}, [], TS)
    assert events == [{"type": "removed", "ts": TS, "source": "vertex", "id": "a", "row": row("a")}]


def test_source_that_fails_emits_its_state_once_and_removes_nothing():
    differ = Differ()
    ok = SourceResult("vertex", rows=[row("a")])
    assert [e["type"] for e in differ.update({"vertex": ok}, TS)] == ["added"]
    down = SourceResult("vertex", state="timeout", error="no answer within 30s", rows=[], took_s=30.0)
    events = differ.update({"vertex": down}, TS)
    assert events == [{"type": "source", "ts": TS, "source": "vertex", "state": "timeout", "rows": 0,
                       "took_s": 30.0, "error": "no answer within 30s", "stale_s": None}]
    assert list(events[0])[:2] == ["type", "ts"]  # SPEC: {"type":"source","ts",...}
    assert differ.update({"vertex": down}, TS) == []
    back = differ.update({"vertex": SourceResult("vertex", rows=[row("a")])}, TS)
    assert [(e["type"], e["state"]) for e in back] == [("source", "ok")]


def test_first_refresh_reports_a_failed_source():
    events = Differ().update({"active": SourceResult("active", state="error", error="403")}, TS)
    assert [(e["type"], e["state"], e["error"]) for e in events] == [("source", "error", "403")]


def wandb_row(source: str, status: str, raw: str, **kw):
    return make_row(source, "r1", status, raw_status=raw, name="bright-sun-7",
                    created="2026-11-22T04:00:00Z", **kw)


def test_a_run_that_ends_moves_from_active_to_completed_as_one_changed_event():
    differ = Differ()
    first = differ.update({"active": SourceResult("active", rows=[wandb_row("active", "RUNNING", "running")]),
                           "completed": SourceResult("completed", rows=[])}, TS)
    assert [(e["type"], e["source"]) for e in first] == [("added", "active")]
    ended = wandb_row("completed", "FAILED", "failed", finished="2026-11-22T04:30:00Z", message="CUDA OOM")
    events = differ.update({"active": SourceResult("active", rows=[]),
                            "completed": SourceResult("completed", rows=[ended])}, TS)
    assert events == [{"type": "changed", "ts": TS, "source": "completed", "id": "r1", "row": ended,
                       "changes": {"status": ["RUNNING", "FAILED"], "raw_status": ["running", "failed"],
                                   "finished": [None, "2026-11-22T04:30:00Z"], "message": [None, "CUDA OOM"],
                                   "source": ["active", "completed"]}}]
    # the next refresh knows it in `completed` only: nothing more to say
    assert differ.update({"active": SourceResult("active", rows=[]),
                          "completed": SourceResult("completed", rows=[ended])}, TS) == []


def test_a_run_removed_without_reappearing_is_still_removed_and_other_sources_never_merge():
    differ = Differ()
    differ.update({"active": SourceResult("active", rows=[wandb_row("active", "RUNNING", "running")]),
                   "vertex": SourceResult("vertex", rows=[row("r1")])}, TS)
    events = differ.update({"active": SourceResult("active", rows=[]),
                            "vertex": SourceResult("vertex", rows=[row("r1"), row("r2")])}, TS)
    assert [(e["type"], e["source"], e["id"]) for e in events] == [("removed", "active", "r1"),
                                                                    ("added", "vertex", "r2")]
