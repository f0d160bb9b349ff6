"""The launch state machine, fed scripted histories (pure: no clock, no network)."""

from __future__ import annotations

import pytest

from arrctl.launch import LaunchWaiter
from arrctl.model import iso_z, make_row

START = 1_800_000_000.0


def job(status: str, created_offset: float = 3.0, raw: str | None = None, message: str | None = None):
    return make_row("vertex", "4242", status, raw_status=raw or f"JOB_STATE_{status}", region="us-central1",
                    name="train-vit", created=iso_z(START + created_offset), message=message)


def execution(status: str, message: str | None = None):
    return make_row("runner", "vertex-ai-launcher-abc", status, raw_status=status, message=message)


def waiter(timeout: float = 120.0) -> LaunchWaiter:
    return LaunchWaiter("vertex-ai-launcher-abc", START, timeout)


@pytest.mark.parametrize("status", ["QUEUED", "PENDING", "RUNNING", "SUCCEEDED"])
def test_a_fresh_job_in_any_started_state_ends_the_wait_with_success(status):
    w = waiter()
    assert w.on_vertex([]) is None
    outcome = w.on_vertex([job(status)])
    assert (outcome.result, outcome.via, outcome.exit_code) == ("success", "vertex", 0)
    assert outcome.message == f"Vertex AI job train-vit is JOB_STATE_{status} in us-central1"


def test_running_ends_the_wait_the_predecessors_bug():
    w = waiter()
    history = [[], [job("PENDING", raw="JOB_STATE_PENDING")]]
    outcomes = [w.on_vertex(jobs) for jobs in history]
    assert outcomes[0] is None and outcomes[1].result == "success"
    assert w.on_execution(execution("RUNNING")) is outcomes[1]  # concluded stays concluded


def test_jobs_created_before_the_start_do_not_count():
    w = waiter()
    assert w.on_vertex([job("RUNNING", created_offset=-600)]) is None
    assert w.seen["vertex"] == "no Vertex AI job yet"


def test_failed_job_is_a_failure_with_its_error():
    outcome = waiter().on_vertex([job("FAILED", message="Quota exceeded for custom_model_training_nvidia_l4_gpus")])
    assert (outcome.result, outcome.via, outcome.message, outcome.exit_code) == (
        "failure", "vertex", "Quota exceeded for custom_model_training_nvidia_l4_gpus", 1)


def test_failed_execution_and_fatal_log_line_are_failures():
    w = waiter()
    assert w.on_execution(execution("RUNNING")) is None
    outcome = w.on_execution(execution("FAILED", "Machine type \"a3-highgpu-1g\" is not supported."))
    assert (outcome.result, outcome.via) == ("failure", "execution")
    w2 = waiter()
    fatal = w2.on_fatal("Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 0.0 in region us-west2.", "gcp.quota")
    assert (fatal.result, fatal.via, fatal.rule) == ("failure", "logs", "gcp.quota")
    assert w2.on_fatal(None, None) is fatal


def test_timeout_points_to_explain():
    w = waiter(timeout=120)
    assert w.on_clock(START + 119.9) is None
    outcome = w.on_clock(START + 120)
    assert (outcome.result, outcome.exit_code) == ("timeout", 124)
    assert outcome.message == "no conclusive signal within 120s; see `arrctl explain vertex-ai-launcher-abc`"


def test_progress_line_says_what_each_path_saw():
    w = waiter()
    w.on_execution(execution("RUNNING"))
    w.on_vertex([])
    assert w.progress(START + 10) == "    10s  execution RUNNING · no Vertex AI job yet"


def test_json_result_object():
    outcome = waiter().on_vertex([job("QUEUED")])
    assert outcome.to_dict(4.26) == {
        "result": "success", "via": "vertex", "message": "Vertex AI job train-vit is JOB_STATE_QUEUED in us-central1",
        "execution": "vertex-ai-launcher-abc", "rule": None, "elapsed_s": 4.3,
        "job": {"id": "4242", "name": "train-vit", "status": "QUEUED", "raw_status": "JOB_STATE_QUEUED",
                "region": "us-central1", "url": None}}
