"""Disagreements between the systems of one launch: found (pure), reported once by `check`, no false page."""

from __future__ import annotations

import pytest

from arrctl import disagree
from arrctl.checking import DeliveryFailed, report_check
from arrctl.config import Config
from arrctl.model import SourceResult, iso_z, make_row
from arrctl.store import Store

NOW = 1_796_383_800.0


def at(offset: float) -> str:
    return iso_z(NOW + offset)  # type: ignore[return-value]


def results(**rows) -> dict[str, SourceResult]:
    out = {s: SourceResult(s) for s in ("runner", "builds", "vertex", "active", "completed")}
    for source, items in rows.items():
        out[source].rows = list(items)
    return out


def job(id_, status, run=None, created=-600.0, finished=None):
    return make_row("vertex", id_, status, raw_status=f"JOB_STATE_{status}", created=at(created),
                    finished=at(finished) if finished is not None else None,
                    links={"wandb_run": run} if run else {}, url=f"https://console/{id_}")


def wandb_run(source, id_, raw, job_id=None, created=-500.0, message=None):
    status = {"running": "RUNNING", "crashed": "FAILED", "failed": "FAILED", "finished": "SUCCEEDED"}[raw]
    return make_row(source, id_, status, raw_status=raw, created=at(created), finished=None if raw == "running"
                    else at(-60), message=message, links={"vertex_job": job_id} if job_id else {},
                    url=f"https://wandb/{id_}")


def execution(id_, status, jobs=(), message="Completed: 1 jobs"):
    return make_row("runner", id_, status, created=at(-4000), finished=at(-3000) if status != "RUNNING" else None,
                    message=message, links={"vertex_jobs": list(jobs), "queue_items": []}, url=f"https://run/{id_}")


SCENE = dict(
    vertex=[job("j-run", "RUNNING", "crash1"), job("j-done", "SUCCEEDED", "still1", finished=-600),
            job("j-stuck", "PENDING", "never1", created=-2400), job("j-new", "QUEUED", created=-60),
            job("j-fresh-end", "SUCCEEDED", "still2", finished=-30)],
    active=[wandb_run("active", "still1", "running", "j-done"), wandb_run("active", "still2", "running", "j-fresh-end")],
    completed=[wandb_run("completed", "crash1", "crashed", "j-run", message="run crashed: no heartbeat since ..."),
               wandb_run("completed", "real1", "failed", message="RuntimeError: boom")],
    runner=[execution("exec-ended", "SUCCEEDED", ["j-stuck"]), execution("exec-running", "RUNNING", ["j-new"])],
)


def test_each_kind_of_disagreement_is_found_once_and_only_where_it_is():
    found = disagree.find(results(**SCENE), NOW, start_timeout_s=1800)
    assert [(d.kind, d.row["source"], d.row["id"], d.message) for d in found] == [
        ("crashed_while_running", "completed", "crash1", "W&B says crashed, but its Vertex AI job j-run is still RUNNING"),
        ("ended_while_running", "vertex", "j-done", "ended SUCCEEDED 10m ago, but its W&B run still1 still says running"),
        ("start_timeout", "vertex", "j-stuck", "pending for 40m, longer than the agent's start timeout (30m)"),
        ("runner_ended_while_starting", "runner", "exec-ended",
         "ended SUCCEEDED while the Vertex AI job j-stuck it launched is still PENDING"),
    ]  # j-fresh-end ended 30 s ago (its run's last state may be on its way), j-new queued 1 min: not yet
    assert [d.misfire for d in found] == [("completed", "crash1"), None, None, None]
    assert disagree.problems(found[:1]) == [{
        "severity": "WARNING", "kind": "crashed_while_running", "source": "completed", "id": "crash1",
        "message": "W&B says crashed, but its Vertex AI job j-run is still RUNNING", "category": None,
        "url": "https://wandb/crash1"}]
    assert disagree.find(results(**SCENE), NOW, start_timeout_s=3600)[2].kind == "runner_ended_while_starting"


def test_check_reports_each_disagreement_once_and_pages_nobody_for_a_crash_that_is_not_one(tmp_path):
    store = Store(tmp_path, scope="test")
    config = Config(check_first_window_s=86400, vertex_start_timeout_s=1800)
    seen = []
    first = report_check(store, results(**SCENE), config, seen.append, now=NOW)
    kinds = [(p["severity"], p["kind"], p["id"]) for p in first.problems]
    assert kinds == [("CRITICAL", "new_failure", "real1"),
                     ("WARNING", "crashed_while_running", "crash1"), ("WARNING", "ended_while_running", "j-done"),
                     ("WARNING", "start_timeout", "j-stuck"), ("WARNING", "runner_ended_while_starting", "exec-ended")]
    assert first.state == "CRITICAL" and first.new_failures == 1  # real1 only: crash1's crash is a misfire
    second = report_check(store, results(**SCENE), config, seen.append, now=NOW + 60)
    assert second.problems == [] and second.state == "OK"
    # the job ends; the run still says crashed: by now it was recorded as told, so it never pages
    later = dict(SCENE, vertex=[job("j-run", "SUCCEEDED", "crash1", finished=-10)] + SCENE["vertex"][1:])
    third = report_check(store, results(**later), config, seen.append, now=NOW + 90)
    assert [p["id"] for p in third.problems] == [] and third.state == "OK"


def test_an_undelivered_check_gives_its_disagreements_back(tmp_path):
    store = Store(tmp_path, scope="test")
    config = Config(check_first_window_s=86400)

    def broken(verdict):
        raise DeliveryFailed("disk full")

    with pytest.raises(DeliveryFailed):
        report_check(store, results(**SCENE), config, broken, now=NOW)
    again = report_check(store, results(**SCENE), config, lambda v: None, now=NOW + 60)
    assert [p["kind"] for p in again.problems if p["severity"] == "WARNING"] == [
        "crashed_while_running", "ended_while_running", "start_timeout", "runner_ended_while_starting"]
    assert again.new_failures == 1
