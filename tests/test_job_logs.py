"""Vertex AI custom jobs and Cloud Build builds explain their failures from their own logs (issue 15):
the filters and judges on their own, then end to end through the real clients against the fake cloud,
read once ever (sources/logread.py, the state store)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from arrctl import health
from arrctl.config import Config
from arrctl.model import make_row
from arrctl.refresh import Endpoints, Refresher
from arrctl.sandbox.base import rfc3339
from arrctl.sandbox.server import SandboxServer
from arrctl.sources import FetchContext, builds, logread, logs, vertex
from arrctl.store import Store

from test_logs import FakeClock
from test_sources_gcp import VERTEX_OOM, VERTEX_WRAPPER, FakeEmitter
from conftest import log_requests

pytestmark = pytest.mark.timeout(120)
REGIONS = ["us-central1", "europe-west4"]  # where the default scenario's custom jobs are
OOM_JOB = "1428571428571428013"
PIP_BUILD = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61"
PIP_ERROR = "No matching distribution found for arr-coc-kernels==0.4.2"
STEP_FAILED = 'Build step failure: build step 0 "gcr.io/cloud-builders/docker" failed: step exited with non-zero status: 1'


# --- the filters ---------------------------------------------------------------------------------

def test_vertex_filter_ors_the_numeric_ids_within_the_jobs_time():
    assert vertex.log_filter(["1428571428571428013", "2857142857142856002"], "2025-11-19T00:00:00Z",
                             "2025-11-19T02:01:00Z") == (
        'resource.type="ml_job" AND (resource.labels.job_id="1428571428571428013" OR '
        'resource.labels.job_id="2857142857142856002") AND timestamp>="2025-11-19T00:00:00Z" AND '
        'timestamp<="2025-11-19T02:01:00Z"')


def test_vertex_filter_of_rows_runs_from_the_oldest_creation_to_the_newest_end_and_a_minute():
    rows = [make_row("vertex", "1", "FAILED", created="2025-11-19T01:00:00Z", finished="2025-11-19T02:00:00Z"),
            make_row("vertex", "2", "FAILED", created="2025-11-19T00:00:00Z", finished="2025-11-19T00:30:00Z")]
    assert vertex.rows_filter(rows, None).endswith(
        'timestamp>="2025-11-19T00:00:00Z" AND timestamp<="2025-11-19T02:01:00Z"')


def test_builds_filter_reads_the_cloudbuild_log_of_each_build():
    assert builds.log_filter("arr-demo", ["a-1", 'b"2'], "2025-11-19T00:00:00Z") == (
        'logName="projects/arr-demo/logs/cloudbuild" AND resource.type="build" AND '
        '(resource.labels.build_id="a-1" OR resource.labels.build_id="b\\"2") AND timestamp>="2025-11-19T00:00:00Z"')


def test_which_jobs_and_builds_have_their_logs_read():
    def job(status, code):
        return make_row("vertex", "j", status, extra={"error_code": code})

    assert [vertex.wants_logs(job(s, c)) for s, c in [
        ("FAILED", 3), ("CANCELLED", 1), ("CANCELLED", 9), ("CANCELLED", None), ("SUCCEEDED", None)]] == [
        True, False, True, False, False]  # a cancellation's own error (code 1 CANCELLED) says nothing
    assert [builds.READER.wants(make_row("builds", "b", "FAILED", raw_status=raw)) for raw in (
        "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED", "SUCCESS")] == [
        True, True, True, False, False, False]


# --- the judges ----------------------------------------------------------------------------------

def ml_entry(replica: str, at: str, text: str) -> dict:
    return {"timestamp": at, "severity": "ERROR", "jsonPayload": {"message": text},
            "resource": {"type": "ml_job", "labels": {"job_id": OOM_JOB, "task_name": replica}}}


def test_the_first_replica_to_fail_decides_and_is_named():
    # workerpool1-0 died first (its last line is the earliest); the chief then failed waiting on it
    entries = [
        ml_entry("workerpool0-0", "2025-11-19T00:10:00Z", "Traceback (most recent call last):"),
        ml_entry("workerpool0-0", "2025-11-19T00:10:00.1Z", '  File "/app/train.py", line 228, in main'),
        ml_entry("workerpool0-0", "2025-11-19T00:10:00.2Z", "ConnectionResetError: [Errno 104] Connection reset by peer"),
        ml_entry("workerpool1-0", "2025-11-19T00:09:00Z", "Traceback (most recent call last):"),
        ml_entry("workerpool1-0", "2025-11-19T00:09:00.1Z", '  File "/app/train.py", line 228, in main'),
        ml_entry("workerpool1-0", "2025-11-19T00:09:00.2Z",
                 "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB."),
    ]
    analysis = vertex.judge_replicas(entries[::-1])  # the API answers newest first
    assert (analysis.verdict, analysis.rule, analysis.category, analysis.message) == (
        "failed", "memory.cuda_oom", "oom", "workerpool1-0: torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB.")


def test_a_healthy_replica_is_not_the_cause():
    entries = [ml_entry("workerpool0-0", "2025-11-19T00:09:00Z", "{'loss': 1.9876, 'epoch': 0.06}"),
               ml_entry("workerpool1-0", "2025-11-19T00:10:00Z", "Traceback (most recent call last):"),
               ml_entry("workerpool1-0", "2025-11-19T00:10:01Z", "KeyError: 'pixel_values'")]
    assert vertex.judge_replicas(entries).message == "workerpool1-0: KeyError: 'pixel_values'"


def test_logs_that_only_say_it_failed_keep_the_apis_words():
    row = make_row("builds", PIP_BUILD, "FAILED", raw_status="FAILURE", extra={"api_message": STEP_FAILED})
    entries = [{"timestamp": "2025-11-19T00:00:0%dZ" % n, "textPayload": text,
                "resource": {"type": "build", "labels": {"build_id": PIP_BUILD}}}
               for n, text in enumerate(["BUILD", "Starting Step #0", "ERROR",
                                         'ERROR: build step 0 "gcr.io/cloud-builders/docker" failed: step exited '
                                         "with non-zero status: 1"])]
    analysis = builds.judge_build(entries)
    assert (analysis.verdict, analysis.rule) == ("failed", "build.step_failed")  # a wrapper, not a cause
    assert builds.conclude(row, analysis)["message"] == STEP_FAILED
    job = make_row("vertex", OOM_JOB, "FAILED", extra={"api_message": VERTEX_WRAPPER})
    quiet = vertex.judge(job, [ml_entry("workerpool0-0", "2025-11-19T00:09:00Z", "{'loss': 1.9876}")])
    assert quiet.verdict != "failed" and vertex.conclude(job, quiet)["message"] == VERTEX_WRAPPER


def test_a_job_whose_logs_are_unread_shows_the_apis_error_marked_as_such():
    job = make_row("vertex", OOM_JOB, "FAILED", message=VERTEX_WRAPPER, extra={"api_message": VERTEX_WRAPPER})
    [row] = logread.provisional(vertex.READER, [job], {OOM_JOB})
    assert row["message"] == VERTEX_WRAPPER and row["extra"]["logs_unread"] is True
    assert logread.provisional(vertex.READER, [job], set()) == [job]


# --- the fake cloud, through the real client ------------------------------------------------------

SINCE = rfc3339(time.time() - 86400)  # the job failed 11000 s, the build 69700 s before the sandbox started


def read(server: SandboxServer, text: str) -> logs.LogRead:
    ctx = FetchContext(config=Config(project="arr-demo", regions=REGIONS), gcp_endpoint=server.url,
                       call_timeout_s=3.0, deadline_s=10.0)
    return logs.read_entries(ctx, FakeEmitter(), text, deadline_at=time.monotonic() + 9)


def test_the_fake_serves_each_replicas_entries_as_ml_job(make_sandbox):
    sandbox = make_sandbox()
    found = read(sandbox, vertex.log_filter([OOM_JOB], SINCE))
    assert found.complete and {vertex.replica_of(e) for e in found.entries} == {"workerpool0-0", "workerpool1-0"}
    oom = next(e for e in found.entries if "OutOfMemoryError" in e["jsonPayload"]["message"])
    assert oom["resource"] == {"type": "ml_job", "labels": {
        "job_id": OOM_JOB, "project_id": "arr-demo", "task_name": "workerpool0-0"}}
    assert oom["severity"] == "ERROR" and oom["jsonPayload"]["levelname"] == "ERROR"
    assert oom["jsonPayload"]["attrs"] == {"tag": "workerpool0-0"} and "textPayload" not in oom
    loss = next(e for e in found.entries if e["jsonPayload"]["message"].startswith("{'loss'"))
    assert loss["severity"] == "INFO"  # stdout
    # another job's id finds nothing; neither do the runner's executions nor the builds
    assert read(sandbox, vertex.log_filter(["1"], SINCE)).entries == []


def test_the_fake_serves_a_builds_log_in_the_cloudbuild_log(make_sandbox):
    sandbox = make_sandbox()
    found = read(sandbox, builds.log_filter("arr-demo", [PIP_BUILD], SINCE))
    texts = [e["textPayload"] for e in found.entries][::-1]
    assert texts[:2] == ["FETCHSOURCE", "Fetching storage object: gs://arr-demo_cloudbuild/source/"
                         "1763377600.482913-6f0d2c4e9a1b47d3b8e5c7a9f1d3e5b7.tgz#1763377601733102"]
    assert texts[-1] == 'ERROR: build step 0 "gcr.io/cloud-builders/docker" failed: step exited with non-zero status: 1'
    assert {e["logName"] for e in found.entries} == {"projects/arr-demo/logs/cloudbuild"}
    assert found.entries[0]["resource"] == {"type": "build", "labels": {
        "build_id": PIP_BUILD, "build_trigger_id": "", "project_id": "arr-demo"}}
    other_log = builds.log_filter("arr-demo", [PIP_BUILD], SINCE).replace("cloudbuild", "stdout")
    assert read(sandbox, other_log).entries == []


# --- end to end: read once ever ------------------------------------------------------------------

def messages(result) -> dict:
    return {r["id"]: (r["message"], r["category"]) for r in result.rows if r["status"] in ("FAILED", "TIMEOUT")}


def test_failed_jobs_and_builds_are_read_once_ever(make_sandbox, tmp_path: Path):
    sandbox = make_sandbox()
    clock = FakeClock()
    config = Config(project="arr-demo", regions=REGIONS)

    def process() -> Refresher:  # a process of its own: its own store connection
        return Refresher(config, Store(tmp_path, clock=clock), Endpoints(gcp=sandbox.url), grace_s=0.1,
                         deadline_s=20.0, clock=clock)

    first = process()
    results = first.refresh(["vertex", "builds"])
    assert {s: r.state for s, r in results.items()} == {"vertex": "ok", "builds": "ok"}
    assert log_requests(sandbox) == 2  # one query per source, for every newly failed item at once
    expected = {
        "vertex": {OOM_JOB: (VERTEX_OOM, "oom"),
                   # failed as it was created (quota): no log at all, the API's error stays
                   "2857142857142856002": ("Quota exceeded for aiplatform.googleapis.com/custom_model_training_"
                                           "nvidia_l4_gpus with base model: requested 1, limit 0 in region "
                                           "europe-west4.", "quota")},
        "builds": {PIP_BUILD: (PIP_ERROR, "dependency"),
                   "2b4d6f80-a1c3-4e5f-b7d9-0e2f4a6c8e62": ("Build timed out after 1200s", "timeout")}}
    assert {s: messages(r) for s, r in results.items()} == expected
    job = next(r for r in results["vertex"].rows if r["id"] == OOM_JOB)
    assert job["extra"]["api_message"] == VERTEX_WRAPPER and "logs_unread" not in job["extra"]
    assert ("vertex", OOM_JOB) in health.failure_keys(results)  # check pages it, with its root error

    again = first.refresh(["vertex", "builds"])  # steady state: memory says it all
    restarted = process().refresh(["vertex", "builds"])  # a new process on the same state directory
    assert log_requests(sandbox) == 2
    assert {s: messages(r) for s, r in again.items()} == expected
    assert {s: messages(r) for s, r in restarted.items()} == expected


def test_a_failed_read_shows_the_apis_words_and_is_tried_again_later(make_sandbox, tmp_path: Path):
    sandbox = make_sandbox(["logging:status:503"])
    clock = FakeClock()
    process = Refresher(Config(project="arr-demo", regions=REGIONS), Store(tmp_path, clock=clock),
                        Endpoints(gcp=sandbox.url), grace_s=0.1, deadline_s=20.0, clock=clock)
    results = process.refresh(["vertex"])
    assert results["vertex"].error.startswith("logs: 503 Service Unavailable")
    job = next(r for r in results["vertex"].rows if r["id"] == OOM_JOB)
    assert job["message"] == VERTEX_WRAPPER and job["extra"]["logs_unread"] is True
    assert ("vertex", OOM_JOB) not in health.failure_keys(results)  # paged once its root error is known
    later = process.refresh(["vertex"])  # within the backoff: no read
    assert log_requests(sandbox) == 1
    assert later["vertex"].error.startswith("logs of 2 jobs not read yet (503 Service Unavailable")


def test_a_failed_job_without_an_error_message_is_still_unread_until_its_logs_are():
    # nothing to show, but not to be remembered either: its logs are read on the next refresh
    job = make_row("vertex", "j", "FAILED")
    [row] = logread.provisional(vertex.READER, [job], {"j"})
    assert row["message"] is None and row["extra"] == {"logs_unread": True}


def test_launch_polls_the_jobs_without_reading_their_logs(make_sandbox):
    sandbox = make_sandbox()
    ctx = FetchContext(config=Config(project="arr-demo", regions=REGIONS), gcp_endpoint=sandbox.url,
                       call_timeout_s=3.0, deadline_s=10.0)
    emit = FakeEmitter()
    vertex.list_jobs(ctx, emit)
    job = next(r for r in emit.final() if r["id"] == OOM_JOB)
    assert job["message"] == VERTEX_WRAPPER and "logs_unread" not in job["extra"]
    assert log_requests(sandbox) == 0 and "logging" not in emit.calls


def test_a_short_deadline_leaves_the_listing_most_of_its_time():
    # `--deadline 4`: keeping the log read's 3 s would leave 18 regions 1 s to answer (tests/test_demo_e2e.py's
    # W&B hang); a read the listing leaves no time for is cut and tried again (explain_new)
    assert logread.listing_budget(4.0) == pytest.approx(2.4)
    assert logread.listing_budget(30.0) == 26.5  # the default deadline: all but the read's 3 s (and 0.5 s to send)
    assert logread.listing_budget(1.0) == 1.0
