"""Merging a refresh with memory: remembered messages, facts from rows, stale rows with their age."""

from __future__ import annotations

from arrctl.model import SourceResult, make_row
from arrctl.refresh import facts_from_rows, fill_from_memory, with_stale


def test_memory_message_wins_over_the_apis_generic_one():
    row = make_row("runner", "e1", "FAILED", message="Task e1-task0 failed with message: exit code 1")
    facts = {"e1": {"status": "FAILED", "message": "Quota 'NVIDIA_L4_GPUS' exceeded.", "jobs": None}}
    assert fill_from_memory([row], facts)[0]["message"] == "Quota 'NVIDIA_L4_GPUS' exceeded."
    assert row["message"].startswith("Task")  # the input is not mutated


def test_memory_of_another_status_is_not_applied():
    row = make_row("runner", "e1", "RUNNING")
    assert fill_from_memory([row], {"e1": {"status": "FAILED", "message": "old"}})[0]["message"] is None


def test_terminal_rows_become_facts_once_but_runner_rows_need_their_logs():
    # a row whose logs are still to be read says so (extra.logs_unread), whatever its message
    results = {
        "vertex": SourceResult("vertex", rows=[make_row("vertex", "j1", "FAILED", message="quota"),
                                               make_row("vertex", "j2", "RUNNING")]),
        "runner": SourceResult("runner", rows=[make_row("runner", "e1", "FAILED", extra={"logs_unread": True})]),
    }
    facts = facts_from_rows(results, {"vertex": {}, "runner": {}})
    assert [(f["source"], f["id"], f["message"]) for f in facts] == [("vertex", "j1", "quota")]
    assert facts_from_rows(results, {"vertex": {"j1": {}}, "runner": {}}) == []


def test_failed_source_shows_last_good_rows_with_their_age():
    last = ([make_row("vertex", "j1", "RUNNING", region="us-central1")], 1000.0)
    result = with_stale(SourceResult("vertex", state="timeout", error="no answer"), last, now=1090.0)
    assert [r["id"] for r in result.rows] == ["j1"] and result.stale_s == 90.0


def test_partial_rows_are_kept_and_only_missing_regions_come_from_memory():
    last = ([make_row("runner", "old-a", "RUNNING", region="us-central1"),
             make_row("runner", "old-b", "FAILED", region="europe-west2")], 1000.0)
    partial = SourceResult("runner", state="timeout", rows=[make_row("runner", "new-a", "RUNNING", region="us-central1")],
                           missing=["europe-west2"])
    result = with_stale(partial, last, now=1010.0)
    assert [r["id"] for r in result.rows] == ["new-a", "old-b"] and result.stale_s == 10.0


def test_ok_source_is_untouched():
    ok = SourceResult("vertex", rows=[])
    assert with_stale(ok, ([make_row("vertex", "x", "RUNNING")], 0.0), 5.0).rows == []


def test_parts_of_a_killed_worker_are_merged_newest_first_and_cut():
    from arrctl.config import Config
    from arrctl.refresh import merge_parts

    rows = [make_row("runner", f"{region}-{n}", "RUNNING", created=f"2026-11-22T0{n}:00:00Z")
            for region in ("a", "b") for n in (1, 3, 2)]
    # ties by the larger id first, as every source orders its own rows (model.newest_first)
    assert [r["id"] for r in merge_parts(Config(runner_limit=3), "runner", rows)] == ["b-3", "a-3", "b-2"]


def test_runner_rows_in_cloud_runs_words_are_not_remembered():
    # shown while Logging is down (issue 12), but their logs must still be read later
    unread = make_row("runner", "e2", "FAILED", message="Cloud Run: Task e2-task0 failed",
                      extra={"condition": "Task e2-task0 failed", "logs_unread": True})
    timed_out = make_row("runner", "e3", "TIMEOUT", message="ReadTimeout: read timed out")
    results = {"runner": SourceResult("runner", rows=[unread, timed_out])}
    facts = facts_from_rows(results, {"runner": {}})
    assert [(f["id"], f["verdict"]) for f in facts] == [("e3", "failed")]


def test_build_locations_of_a_killed_worker_are_merged_as_two_tables():
    from arrctl.config import Config
    from arrctl.refresh import merge_parts

    def build(id, table, hour):
        return make_row("builds", id, "QUEUED" if table == "active" else "SUCCEEDED",
                        created=f"2026-11-22T0{hour}:00:00Z", extra={"table": table})

    parts = [build("g-old", "recent", 1), build("g-q", "active", 2), build("r-new", "recent", 5),
             build("r-q", "active", 4), build("r-mid", "recent", 3)]
    merged = merge_parts(Config(project="p", builds_recent=2), "builds", parts)
    assert [r["id"] for r in merged] == ["r-q", "g-q", "r-new", "r-mid"]


def test_rows_from_memory_carry_their_age_and_fresh_rows_do_not():
    last = ([make_row("vertex", "old-a", "RUNNING", region="us-central1"),
             make_row("vertex", "old-b", "FAILED", region="europe-west4")], 1000.0)
    partial = SourceResult("vertex", state="error", rows=[make_row("vertex", "new-a", "RUNNING", region="us-central1")],
                           missing=["europe-west4"])
    rows = {r["id"]: r for r in with_stale(partial, last, now=1042.25).rows}
    assert rows["old-b"]["extra"] == {"stale_s": 42.2} and "stale_s" not in rows["new-a"]["extra"]
    assert last[0][1]["extra"] == {}  # memory itself is not changed
    whole = with_stale(SourceResult("vertex", state="timeout"), last, now=1010.0)
    assert [r["extra"]["stale_s"] for r in whole.rows] == [10.0, 10.0]


def test_memory_scope_names_project_job_wandb_and_endpoints():
    from arrctl.config import Config
    from arrctl.refresh import Endpoints, memory_scope

    base = Config(project="p", runner_job="j", wandb_entity="e", wandb_project="w")
    scope = memory_scope(base, Endpoints())
    others = [
        memory_scope(Config(project="q", runner_job="j", wandb_entity="e", wandb_project="w"), Endpoints()),
        memory_scope(Config(project="p", runner_job="k", wandb_entity="e", wandb_project="w"), Endpoints()),
        memory_scope(Config(project="p", runner_job="j", wandb_entity="f", wandb_project="w"), Endpoints()),
        memory_scope(Config(project="p", runner_job="j", wandb_entity="e", wandb_project="x"), Endpoints()),
        memory_scope(base, Endpoints(gcp="http://127.0.0.1:8080")),
        memory_scope(base, Endpoints(wandb="http://127.0.0.1:8080")),
        memory_scope(base, Endpoints(gcp="http://127.0.0.1:8080", wandb="http://127.0.0.1:8080", memory="demo:default")),
    ]
    assert len({scope, *others}) == 8
    assert memory_scope(base, Endpoints(gcp="http://127.0.0.1:8080/")) == others[4]  # one address, one memory
    # the demo's sandbox listens on a new port each run: its memory is keyed by its label
    assert memory_scope(base, Endpoints(gcp="http://127.0.0.1:1", wandb="http://127.0.0.1:1", memory="demo:default")) \
        == others[6]
