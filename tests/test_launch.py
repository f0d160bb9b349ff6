"""The launch state machine, fed scripted histories (pure: no clock, no network)."""

from __future__ import annotations

import pytest

from arrctl import launch
from arrctl.launch import Evidence, LaunchWaiter, evidence_from_lines, match_job
from arrctl.model import iso_z, make_row

START = 1_800_000_000.0


def job(status: str, created_offset: float = 3.0, raw: str | None = None, message: str | None = None,
        id: str = "4242", run: str | None = None, item: str | None = None):
    links = {k: v for k, v in (("wandb_run", run), ("queue_item", item)) if v}
    return make_row("vertex", id, status, raw_status=raw or f"JOB_STATE_{status}", region="us-central1",
                    name="train-vit", created=iso_z(START + created_offset), message=message, links=links)


def execution(status: str, message: str | None = None):
    return make_row("runner", "vertex-ai-launcher-abc", status, raw_status=status, message=message)


def waiter(timeout: float = 120.0, logs_unreadable: bool = True) -> LaunchWaiter:
    """A waiter whose execution's logs could not be read: only the time window tells its job."""
    w = LaunchWaiter("vertex-ai-launcher-abc", START, timeout)
    if logs_unreadable:
        w.on_logs(None)
    return w


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
        "execution": "vertex-ai-launcher-abc", "rule": None, "match": "time", "elapsed_s": 4.3,
        "job": {"id": "4242", "name": "train-vit", "status": "QUEUED", "raw_status": "JOB_STATE_QUEUED",
                "region": "us-central1", "url": None}, "wandb_run": None, "queue_item": None}


def test_the_result_names_the_w_and_b_run_and_queue_item_from_the_jobs_links():
    labelled = {**job("RUNNING"), "links": {"wandb_run": "p2t6v9jx", "queue_item": "UnVuUXVldWVJdGVtOjk="}}
    outcome = waiter().on_vertex([labelled])
    assert outcome.names() == {"wandb_run": "p2t6v9jx", "queue_item": "UnVuUXVldWVJdGVtOjk="}
    assert outcome.to_dict(1.0)["wandb_run"] == "p2t6v9jx"


# --- which job is this execution's -------------------------------------------------------------

AGENT_LOG = [
    "wandb: launch: agent l4unch01 polling on queues vertex-ai-queue, running 0 out of a maximum of 1 jobs",
    "wandb: launch: Launch agent received job:",
    "{'runQueueItemId': 'UnVuUXVldWVJdGVtOjQyMQ==',",
    " 'runSpec': {'entity': 'arr-demo', 'project': 'arr-coc-0-1'}}",
    "wandb: launch: Launching run from queue vertex-ai-queue (run id k2x9q7pd)",
    "CustomJob created. Resource name: projects/123456789012/locations/us-central1/customJobs/8000000000000000123",
    "Runs: 1",
]


def test_evidence_reads_the_resource_name_the_run_id_and_the_queue_item():
    evidence = evidence_from_lines(AGENT_LOG)
    assert evidence == Evidence(vertex_jobs=("8000000000000000123",), run_ids=("k2x9q7pd",),
                                queue_items=("UnVuUXVldWVJdGVtOjQyMQ==",), launched=True, runs=1)
    idle = evidence_from_lines(AGENT_LOG[:1] + ["⏱️  Idle timeout reached - stopping agent", "Runs: 0"])
    assert (idle.launched, idle.runs, idle.names_a_job) == (False, 0, False)
    assert Evidence.from_dict(evidence.to_dict()) == evidence


def test_a_colleagues_job_created_after_the_start_is_not_ours():
    colleague = job("QUEUED", created_offset=1.0, id="777", run="c0ll3agu")
    ours = job("FAILED", created_offset=2.0, id="888", run="k2x9q7pd", message="Quota exceeded")
    named = Evidence(run_ids=("k2x9q7pd",), launched=True)
    assert match_job([colleague, ours], named, START, logs_readable=True) == (ours, "label")
    assert match_job([colleague], named, START, logs_readable=True) == (None, None)  # ours not listed yet
    by_name = Evidence(vertex_jobs=("888",), run_ids=("other",), launched=True)
    assert match_job([colleague, ours], by_name, START, True) == (ours, "log")
    by_item = Evidence(queue_items=("UnVuUXVldWVJdGVtOjQyMQ==",), launched=True)
    queued = job("QUEUED", id="999", item="UnVuUXVldWVJdGVtOjQyMQ==")
    assert match_job([colleague, queued], by_item, START, True) == (queued, "config")
    w = waiter(logs_unreadable=False)
    w.on_vertex([colleague, ours])
    assert w.outcome is None  # logs not read yet: they may name the job, so no guess by time
    w.on_logs(Evidence())
    assert w.outcome is None  # read, naming nothing yet: still no guess
    outcome = w.on_logs(named)
    assert (outcome.result, outcome.match, outcome.message) == ("failure", "label", "Quota exceeded")


def test_time_is_the_fallback_only_when_nothing_better_exists():
    colleague = job("QUEUED", created_offset=1.0, id="777", run="c0ll3agu")
    # logs unreadable: the time window, and the outcome says so
    assert match_job([colleague], Evidence(), START, logs_readable=False) == (colleague, "time")
    # the logs show a launch without naming it (an agent that prints no ids): the time window too
    assert match_job([colleague], Evidence(launched=True), START, logs_readable=True) == (colleague, "time")
    # the logs are readable and show no launch yet, or were not tried yet: wait for them
    assert match_job([colleague], Evidence(), START, logs_readable=True) == (None, None)
    assert match_job([colleague], Evidence(), START, logs_readable=None) == (None, None)


def test_a_runner_that_idles_out_with_runs_0_launched_nothing():
    w = waiter(logs_unreadable=False)
    w.on_logs(Evidence(runs=0))
    w.on_vertex([job("QUEUED", created_offset=1.0, id="777", run="c0ll3agu")])
    assert w.outcome is None
    outcome = w.on_execution(execution("SUCCEEDED", "Completed: 0 jobs"))
    assert (outcome.result, outcome.exit_code, outcome.message) == (
        "failure", 1, "the runner finished without launching anything (Runs: 0)")


def test_a_launch_the_logs_show_but_do_not_name_yet_waits_before_the_time_window():
    # the agent prints the run id and the resource name a few lines after "received job":
    # a colleague's job created meanwhile must not be taken for ours at once
    colleague = job("QUEUED", created_offset=1.0, id="777", run="c0ll3agu")
    w = waiter(logs_unreadable=False)
    w.on_clock(START + 1)
    w.on_logs(Evidence(launched=True))
    assert w.on_vertex([colleague]) is None
    w.on_clock(START + 1 + launch.UNNAMED_WAIT_S - 0.5)
    assert w.on_vertex([colleague]) is None
    w.on_clock(START + 1 + launch.UNNAMED_WAIT_S)
    outcome = w.on_vertex([colleague])
    assert (outcome.result, outcome.match) == ("success", "time")  # an agent that prints no ids
