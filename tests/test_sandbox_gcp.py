"""The four fake Google APIs through the real, unmodified client libraries (REST transport).

Parsed values are asserted, not just "no error": the clients drop unknown fields silently and
turn unknown enum strings into 0. Time is a pinned ManualClock, so nothing here sleeps.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import google.api_core.exceptions as gexc
import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform_v1, run_v2
from google.cloud import logging as cloud_logging
from google.cloud.devtools import cloudbuild_v1
from google.protobuf.json_format import ParseError

from arrctl.sandbox import Sandbox
from arrctl.sandbox.base import rfc3339
from arrctl.sandbox.cloudlogging import parse_filter
from arrctl.sandbox.faults import parse_fault
from arrctl.sandbox.clock import ManualClock
from arrctl.sandbox.scenario import scenario_dir
from arrctl.sandbox.server import SandboxServer, load_services

NOW = 1_750_000_000.0
P = "arr-demo"
JOB = f"projects/{P}/locations/us-central1/jobs/vertex-ai-launcher"
T = 5.0  # every call gets an explicit timeout and retry=None
LOGS = Path(__file__).resolve().parents[1] / "arrctl/sandbox/scenarios/default/logs"
EXEC_LABEL = 'labels."run.googleapis.com/execution_name"'


def at(offset: float) -> float:
    """Epoch seconds of a scenario offset, with the clock pinned at t=0 -> NOW."""
    return NOW + offset


def log_lines(name: str) -> list[str]:
    """The non-blank lines of a fixture log."""
    return [line for line in (LOGS / name).read_text().splitlines() if line.strip()]


@pytest.fixture
def cloud() -> Iterator[Any]:
    """Start an in-process sandbox on a pinned clock and make real clients for it."""
    servers: list[SandboxServer] = []

    def _cloud(*faults: str, scenario: str = "default") -> SimpleNamespace:
        clock = ManualClock(now=NOW, t=0.0)
        directory = scenario_dir(scenario)
        services = [s for s in load_services(directory, clock, warn=io.StringIO())
                    if s.name != "wandb"]
        server = SandboxServer(directory, [parse_fault(f) for f in faults], clock=clock,
                               services=services).start()
        servers.append(server)
        return make_clients(server.url, clock=clock, server=server)

    yield _cloud
    for server in servers:
        server.stop()


def make_clients(url: str, **extra: Any) -> SimpleNamespace:
    """The REST clients arrctl's sources use, pointed at url with anonymous credentials."""
    creds, opts = AnonymousCredentials(), {"api_endpoint": url}
    logging_client = cloud_logging.Client(project=P, credentials=creds, _use_grpc=False,
                                          client_options=opts)
    return SimpleNamespace(
        url=url,
        executions=run_v2.ExecutionsClient(transport="rest", credentials=creds,
                                           client_options=opts),
        jobs=run_v2.JobsClient(transport="rest", credentials=creds, client_options=opts),
        vertex=aiplatform_v1.JobServiceClient(transport="rest", credentials=creds,
                                              client_options=opts),
        build=cloudbuild_v1.CloudBuildClient(transport="rest", credentials=creds,
                                             client_options=opts),
        logging=logging_client._connection, **extra)


def executions(c: SimpleNamespace, region: str = "us-central1", **request: Any) -> list[Any]:
    """Every execution of the runner job in a region, through the pager."""
    parent = f"projects/{P}/locations/{region}/jobs/vertex-ai-launcher"
    return list(c.executions.list_executions(request={"parent": parent, **request},
                                             timeout=T, retry=None))


def custom_jobs(c: SimpleNamespace, region: str = "us-central1", **request: Any) -> list[Any]:
    """Every custom job of a region, through the pager, in the order the API gave them."""
    return list(c.vertex.list_custom_jobs(
        request={"parent": f"projects/{P}/locations/{region}", **request}, timeout=T, retry=None))


def newest_first(jobs: list[Any]) -> list[Any]:
    """Jobs sorted client-side, as the Vertex SDK's `_list_with_local_order` does (no order_by)."""
    return sorted(jobs, key=lambda j: (j.create_time.timestamp(), j.name), reverse=True)


def entries(c: SimpleNamespace, flt: str, page_size: int = 1000,
            order: str = "timestamp desc") -> tuple[list[dict[str, Any]], int]:
    """Every entry of a filter, following nextPageToken: (entries, pages read)."""
    found: list[dict[str, Any]] = []
    token, pages = None, 0
    while True:
        body = {"resourceNames": [f"projects/{P}"], "filter": flt, "orderBy": order,
                "pageSize": page_size}
        if token:
            body["pageToken"] = token
        answer = c.logging.api_request(method="POST", path="/entries:list", data=body, timeout=10)
        pages += 1
        found += answer.get("entries", [])
        token = answer.get("nextPageToken")
        if not token:
            return found, pages


def payload(entry: dict[str, Any]) -> str:
    """textPayload or jsonPayload.message."""
    return entry.get("textPayload") or entry["jsonPayload"]["message"]


def by_execution(*names: str, since: float = -86400) -> str:
    """The OR-ed execution filter the runner source sends, bounded below (the API has no default)."""
    ored = " OR ".join(f'{EXEC_LABEL}="{name}"' for name in names)
    return f'({ored}) AND timestamp>="{rfc3339(at(since))}"'


# --- Cloud Run -------------------------------------------------------------------------------

def test_executions_are_listed_newest_first_with_parsed_values(cloud: Any) -> None:
    c = cloud()
    found = executions(c, page_size=50)
    assert [e.name.rsplit("/", 1)[1] for e in found] == [
        "vertex-ai-launcher-h4k8w", "vertex-ai-launcher-q7m2x", "vertex-ai-launcher-t2v6b",
        "vertex-ai-launcher-p3w9n", "vertex-ai-launcher-8hd4k", "vertex-ai-launcher-c9x3d"]
    running, succeeded, _, _, failed, _ = found
    assert running.name == f"{JOB}/executions/vertex-ai-launcher-h4k8w"
    assert running.job == "vertex-ai-launcher"
    assert running.create_time.timestamp() == at(-600)
    assert running.start_time.timestamp() == at(-592)
    assert not running.completion_time
    assert (running.task_count, running.running_count, running.succeeded_count,
            running.failed_count, running.reconciling) == (1, 1, 0, 0, True)
    assert running.conditions[0].type_ == "Completed"
    assert running.conditions[0].state == run_v2.Condition.State.CONDITION_RECONCILING

    assert succeeded.completion_time.timestamp() == at(-12600)
    assert succeeded.succeeded_count == 1
    assert succeeded.conditions[0].state == run_v2.Condition.State.CONDITION_SUCCEEDED
    assert succeeded.conditions[0].message == "Execution completed successfully in 29m52.00s."

    assert failed.name.endswith("/vertex-ai-launcher-8hd4k")
    assert (failed.failed_count, failed.reconciling) == (1, False)
    assert failed.completion_time.timestamp() == at(-71700)
    completed = failed.conditions[0]
    assert completed.state == run_v2.Condition.State.CONDITION_FAILED
    assert completed.execution_reason == run_v2.Condition.ExecutionReason.NON_ZERO_EXIT_CODE
    assert completed.last_transition_time.timestamp() == at(-71700)
    assert completed.message == ("Task vertex-ai-launcher-8hd4k-task0 failed with message: "
                                 "The container exited with an error.")
    assert "execution_name%22%3D%22vertex-ai-launcher-8hd4k%22" in failed.log_uri


def by_id(found: list[Any]) -> dict[str, Any]:
    return {e.name.rsplit("/", 1)[1].removeprefix("vertex-ai-launcher-"): e for e in found}


def test_executions_retry_tasks_and_say_why_they_ended(cloud: Any) -> None:
    c = cloud(scenario="real-apis")
    C = run_v2.Condition
    us = by_id(executions(c))
    eu = by_id(executions(c, "europe-west2"))
    asia = by_id(executions(c, "asia-northeast1"))
    retried_ok, retried_failed, cancelling = us["rt2s0"], us["rt3f9"], us["cx7n8"]
    assert (retried_ok.succeeded_count, retried_ok.failed_count, retried_ok.retried_count) == (1, 0, 1)
    assert retried_ok.template.max_retries == 3
    assert [x.type_ for x in retried_ok.conditions] == ["Completed", "ResourcesAvailable", "Started", "Retry"]
    retry = retried_ok.conditions[3]
    assert (retry.state, retry.reason, retry.severity) == (
        C.State.CONDITION_SUCCEEDED, C.CommonReason.IMMEDIATE_RETRY, C.Severity.INFO)
    assert retried_ok.conditions[0].state == C.State.CONDITION_SUCCEEDED
    assert (retried_failed.failed_count, retried_failed.retried_count) == (1, 1)
    assert retried_failed.conditions[0].execution_reason == C.ExecutionReason.NON_ZERO_EXIT_CODE

    tasks = eu["mt4k1"]  # one task failed, its sibling was cancelled: the execution FAILED
    assert (tasks.task_count, tasks.succeeded_count, tasks.failed_count, tasks.cancelled_count) == (3, 1, 1, 1)
    assert tasks.conditions[0].state == C.State.CONDITION_FAILED
    assert tasks.conditions[0].execution_reason == C.ExecutionReason.NON_ZERO_EXIT_CODE
    assert tasks.conditions[0].message.startswith("Task vertex-ai-launcher-mt4k1-task1 failed")

    timed_out = asia["to5x2"].conditions[0]  # the common reason instead of executionReason (a oneof)
    assert timed_out.reason == C.CommonReason.PROGRESS_DEADLINE_EXCEEDED
    assert "execution_reason" not in timed_out and "reason" in timed_out
    assert us["dl6w3"].conditions[0].execution_reason == C.ExecutionReason.NON_ZERO_EXIT_CODE

    completed = cancelling.conditions[0]
    assert (completed.state, completed.execution_reason) == (
        C.State.CONDITION_RECONCILING, C.ExecutionReason.CANCELLING)
    assert cancelling.running_count == 1 and cancelling.start_time and not cancelling.completion_time
    c.clock.set(31)
    done = by_id(executions(c))["cx7n8"]
    assert done.conditions[0].execution_reason == C.ExecutionReason.CANCELLED
    assert done.completion_time.timestamp() == at(30)


def test_every_attempt_logs_under_the_execution_label(cloud: Any) -> None:
    c = cloud(scenario="real-apis")
    logs = Path(__file__).resolve().parents[1] / "arrctl/sandbox/scenarios/real-apis/logs"
    found, _ = entries(c, by_execution("vertex-ai-launcher-rt3f9"))
    attempts = {}
    for entry in found:
        labels = entry["labels"]
        assert labels["run.googleapis.com/execution_name"] == "vertex-ai-launcher-rt3f9"
        key = (labels["run.googleapis.com/task_index"], labels["run.googleapis.com/task_attempt"])
        attempts.setdefault(key, []).append(entry)
    assert sorted(attempts) == [("0", "0"), ("0", "1"), ("0", "2"), ("0", "3")]
    for (_, number), group in attempts.items():
        lines = [line for line in (logs / f"rt3f9-task0-attempt{number}.log").read_text().splitlines()
                 if line.strip()]
        assert len(group) == len(lines) + 1  # + Cloud Run's "Container called exit(1)." per failed attempt
    # attempts follow each other in time
    last_of = {n: max(e["timestamp"] for e in g) for (_, n), g in attempts.items()}
    first_of = {n: min(e["timestamp"] for e in g) for (_, n), g in attempts.items()}
    assert last_of["0"] < first_of["1"] < last_of["1"] < first_of["2"] < last_of["2"] < first_of["3"]
    tasks, _ = entries(c, by_execution("vertex-ai-launcher-mt4k1"))
    assert {(e["labels"]["run.googleapis.com/task_index"], e["labels"]["run.googleapis.com/task_attempt"])
            for e in tasks} == {("0", "0"), ("1", "0"), ("2", "0")}


def test_other_regions_and_a_missing_job(cloud: Any) -> None:
    c = cloud()
    assert [e.name.rsplit("/", 1)[1] for e in executions(c, "europe-west2")] == [
        "vertex-ai-launcher-r1n7v", "vertex-ai-launcher-w4j1s", "vertex-ai-launcher-kbflt"]
    image_pull = executions(c, "asia-northeast1")[1]
    assert image_pull.conditions[0].message.endswith(
        "Image 'us-central1-docker.pkg.dev/arr-demo/arr-coc-registry/arr-vertex-launcher:v7' "
        "not found.")
    assert executions(c, "us-east1") == []
    with pytest.raises(gexc.NotFound, match="Resource 'nope' of kind 'JOB'"):
        list(c.executions.list_executions(
            request={"parent": f"projects/{P}/locations/us-east1/jobs/nope"},
            timeout=T, retry=None))


def test_executions_evolve_with_scenario_time(cloud: Any) -> None:
    c = cloud()
    c.clock.set(7)
    h4k8w = executions(c)[0]
    assert h4k8w.name.endswith("h4k8w") and h4k8w.succeeded_count == 1
    assert h4k8w.completion_time.timestamp() == at(6)
    c.clock.set(13)
    r1n7v = executions(c, "europe-west2")[0]
    assert r1n7v.name.endswith("r1n7v") and r1n7v.failed_count == 1
    c.clock.set(16)
    newest = executions(c)[0]
    assert newest.name.endswith("b7t3q")
    assert newest.conditions[0].state == run_v2.Condition.State.CONDITION_PENDING
    assert (newest.running_count, bool(newest.start_time)) == (0, False)
    c.clock.set(18)
    assert executions(c)[0].running_count == 1


def test_pages_fault_makes_the_client_follow_three_pages(cloud: Any) -> None:
    c = cloud("run:pages:3")
    before = c.server.counters.snapshot()["run"]
    assert len(executions(c, page_size=50)) == 6
    assert c.server.counters.snapshot()["run"] - before == 3


def test_run_job_returns_an_operation_whose_execution_evolves(cloud: Any) -> None:
    c = cloud()
    operation = c.jobs.run_job(name=JOB, timeout=T, retry=None)
    assert re.fullmatch(rf"projects/{P}/locations/us-central1/operations/[0-9a-f-]{{36}}",
                        operation.operation.name)
    started = operation.metadata
    assert isinstance(started, run_v2.Execution)
    assert re.fullmatch(rf"{JOB}/executions/vertex-ai-launcher-[0-9a-z]{{5}}", started.name)
    assert started.create_time.timestamp() == NOW
    assert started.conditions[0].state == run_v2.Condition.State.CONDITION_PENDING
    assert not operation.done(retry=None)

    c.clock.set(1)
    got = c.executions.get_execution(name=started.name, timeout=T, retry=None)
    assert (got.running_count, got.start_time.timestamp()) == (1, at(0.5))
    assert executions(c)[0].name == started.name  # newest first

    jobs_after = f'create_time>"{rfc3339(NOW)}"'
    assert custom_jobs(c, filter=jobs_after) == []
    c.clock.set(2)
    (job,) = custom_jobs(c, filter=jobs_after)
    assert job.state == aiplatform_v1.JobState.JOB_STATE_QUEUED
    assert job.create_time.timestamp() == at(2)
    run_id = job.labels["wandb-run-id"]  # as W&B Launch labels the job it submits
    env = {e.name: e.value for e in job.job_spec.worker_pool_specs[0].container_spec.env}
    assert env["WANDB_RUN_ID"] == run_id and env["WANDB_API_KEY"] == "demo" + "0" * 36  # plain text, as W&B writes it
    assert env["WANDB_LAUNCH_TRACE_ID"]  # the run queue item
    c.clock.set(4)
    assert custom_jobs(c, filter=jobs_after)[0].state == aiplatform_v1.JobState.JOB_STATE_RUNNING

    c.clock.set(8)
    assert operation.done(retry=None)
    result = operation.result(timeout=T, retry=None)
    assert result.name == started.name and result.succeeded_count == 1
    found, _ = entries(c, by_execution(started.name.rsplit("/", 1)[1]))
    texts = [payload(e) for e in found]
    assert "Runs: 1" in texts
    assert f"✅ Job submitted to Vertex AI (run {run_id}, job {job.name.rsplit('/', 1)[1]})" in texts
    assert f"CustomJob created. Resource name: {job.name}" in texts  # the aiplatform SDK's own line
    assert f"{{'runQueueItemId': '{env['WANDB_LAUNCH_TRACE_ID']}'," in texts


def test_launch_vertex_fails(cloud: Any) -> None:
    c = cloud(scenario="launch-vertex-fails")
    c.jobs.run_job(name=JOB, timeout=T, retry=None)
    c.clock.set(4)
    (job,) = custom_jobs(c, filter=f'create_time>"{rfc3339(NOW)}"')
    assert job.state == aiplatform_v1.JobState.JOB_STATE_FAILED
    assert job.error.code == 8
    assert job.error.message.startswith(
        "Quota exceeded for aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus")


def test_launch_exec_fails(cloud: Any) -> None:
    c = cloud(scenario="launch-exec-fails")
    operation = c.jobs.run_job(name=JOB, timeout=T, retry=None)
    c.clock.set(5)
    execution = c.executions.get_execution(name=operation.metadata.name, timeout=T, retry=None)
    assert execution.failed_count == 1
    assert execution.conditions[0].state == run_v2.Condition.State.CONDITION_FAILED
    assert operation.done(retry=None)
    assert "-task0 failed with message" in str(operation.exception())
    assert custom_jobs(c, filter=f'create_time>"{rfc3339(NOW)}"') == []
    found, _ = entries(c, by_execution(execution.name.rsplit("/", 1)[1]), order="timestamp asc")
    texts = [payload(e) for e in found]
    assert texts[-1] == "Container called exit(1)."
    marker = texts.index('🚨 FATAL ERROR DETECTED: Machine type "a3-highgpu-1g" is not supported.')
    assert 'google.api_core.exceptions.InvalidArgument: 400 Machine type "a3-highgpu-1g" is ' \
           'not supported.' in texts[max(0, marker - 20):marker]


def test_launch_fatal_log_keeps_running(cloud: Any) -> None:
    c = cloud(scenario="launch-fatal-log")
    operation = c.jobs.run_job(name=JOB, timeout=T, retry=None)
    name = operation.metadata.name.rsplit("/", 1)[1]
    c.clock.set(2.5)
    assert not any("Quota" in payload(e) for e in entries(c, by_execution(name))[0])
    c.clock.set(3.5)
    newest = entries(c, by_execution(name))[0][0]
    assert re.fullmatch(r"wandb: ERROR launch: Error launching run [0-9a-f]{8}: 429 Quota "
                        r"'NVIDIA_L4_GPUS' exceeded\. Limit: 0\.0 in region us-west2\.", payload(newest))
    c.clock.set(600)
    assert executions(c)[0].running_count == 1
    assert not operation.done(retry=None)
    assert custom_jobs(c, filter=f'create_time>"{rfc3339(NOW)}"') == []


def test_launch_stuck_never_concludes(cloud: Any) -> None:
    c = cloud(scenario="launch-stuck")
    operation = c.jobs.run_job(name=JOB, timeout=T, retry=None)
    c.clock.set(600)
    assert not operation.done(retry=None)
    assert executions(c)[0].running_count == 1
    assert custom_jobs(c, filter=f'create_time>"{rfc3339(NOW)}"') == []
    name = operation.metadata.name.rsplit("/", 1)[1]
    texts = [payload(e) for e in entries(c, by_execution(name), order="timestamp asc")[0]]
    assert texts == [line for line in (scenario_dir("launch-stuck") / "logs/launch-stuck.log")
                     .read_text().splitlines() if line.strip()]


# --- Vertex AI -------------------------------------------------------------------------------

def test_custom_jobs_states_errors_and_specs(cloud: Any) -> None:
    c = cloud()
    jobs = newest_first(custom_jobs(c, page_size=100))
    S = aiplatform_v1.JobState
    assert [(j.name.rsplit("/", 1)[1], j.state) for j in jobs] == [
        ("1428571428571428031", S.JOB_STATE_PENDING),
        ("1428571428571428061", S.JOB_STATE_SUCCEEDED),
        ("1428571428571428022", S.JOB_STATE_RUNNING),
        ("1428571428571428012", S.JOB_STATE_PENDING),  # stuck: never leaves PENDING (issue 17)
        ("1428571428571428013", S.JOB_STATE_FAILED),
        ("1428571428571428011", S.JOB_STATE_SUCCEEDED),
        ("1428571428571428041", S.JOB_STATE_CANCELLED),
        ("1428571428571428001", S.JOB_STATE_SUCCEEDED),
        ("1428571428571428099", S.JOB_STATE_SUCCEEDED)]
    running, failed, cancelled = jobs[2], jobs[4], jobs[6]
    assert running.name == "projects/123456789012/locations/us-central1/customJobs/" \
                           "1428571428571428022"
    assert running.display_name == "arr-coc-train-s4d8f2gh"
    assert running.start_time.timestamp() == at(-3400) and not running.end_time
    spec = running.job_spec.worker_pool_specs[0].machine_spec
    assert (spec.machine_type, spec.accelerator_type, spec.accelerator_count) == (
        "g2-standard-4", aiplatform_v1.AcceleratorType.NVIDIA_L4, 1)
    assert failed.end_time.timestamp() == at(-11000)
    assert failed.error.code == 3
    assert failed.error.message.startswith("The replica workerpool0-0 exited with a non-zero")
    assert (cancelled.error.code, cancelled.error.message) == (1, "CANCELED")

    (quota, ok) = newest_first(custom_jobs(c, "europe-west4"))
    assert quota.state == S.JOB_STATE_FAILED
    assert "custom_model_training_nvidia_l4_gpus" in quota.error.message
    assert ok.job_spec.worker_pool_specs[0].machine_spec.accelerator_type == \
        aiplatform_v1.AcceleratorType.NVIDIA_TESLA_A100
    assert custom_jobs(c, "us-east1") == []


def test_custom_job_moves_pending_running_succeeded(cloud: Any) -> None:
    c = cloud()
    S = aiplatform_v1.JobState
    states = []
    for t in (0, 6, 18):
        c.clock.set(t)
        job = c.vertex.get_custom_job(
            name=f"projects/{P}/locations/us-central1/customJobs/1428571428571428031",
            timeout=T, retry=None)
        states.append(job.state)
    assert states == [S.JOB_STATE_PENDING, S.JOB_STATE_RUNNING, S.JOB_STATE_SUCCEEDED]
    assert job.end_time.timestamp() == at(18)


def test_custom_jobs_filter_on_state_and_paging(cloud: Any) -> None:
    c = cloud("vertex:pages:4")
    failed = custom_jobs(c, filter='state="JOB_STATE_FAILED" OR state="JOB_STATE_CANCELLED"')
    assert sorted(j.name.rsplit("/", 1)[1] for j in failed) == [
        "1428571428571428013", "1428571428571428041"]
    before = c.server.counters.snapshot()["vertex"]
    assert len(custom_jobs(c)) == 9
    assert c.server.counters.snapshot()["vertex"] - before == 3  # ceil(9/4)=3 per page


def test_custom_jobs_come_in_no_particular_order(cloud: Any) -> None:
    # ListCustomJobs has no order_by and documents no order; the SDK sorts client-side
    c = cloud("vertex:pages:3")
    listed = custom_jobs(c)
    created = [j.create_time.timestamp() for j in listed]
    assert created != sorted(created, reverse=True) and created != sorted(created)
    assert newest_first(listed)[0].name.endswith("/1428571428571428031")
    assert [j.name for j in custom_jobs(c, page_size=2)] == [j.name for j in listed]  # pages hold together


def test_custom_jobs_create_time_filter(cloud: Any) -> None:
    c = cloud()
    since = rfc3339(at(-13000))
    recent = custom_jobs(c, filter=f'create_time>="{since}"')
    assert sorted(j.name.rsplit("/", 1)[1] for j in recent) == [
        "1428571428571428012", "1428571428571428013", "1428571428571428022", "1428571428571428031",
        "1428571428571428061"]
    assert {j.name.rsplit("/", 1)[1] for j in custom_jobs(c, filter=f'create_time>"{since}"')} == {
        "1428571428571428012", "1428571428571428022", "1428571428571428031", "1428571428571428061"}
    both = custom_jobs(c, filter=f'create_time>="{since}" AND state="JOB_STATE_RUNNING"')
    assert [j.name.rsplit("/", 1)[1] for j in both] == ["1428571428571428022"]


@pytest.mark.parametrize("bad", ['create_time>="yesterday"', "create_time>=2025-06-15T00:00:00Z",
                                 'create_time>="2025-06-15"', 'create_time>="2025-06-15T00:00:00'])
def test_custom_jobs_malformed_create_time_is_invalid_argument(cloud: Any, bad: str) -> None:
    c = cloud()
    with pytest.raises(gexc.BadRequest, match="400 .*Provided filter is not valid"):
        custom_jobs(c, filter=bad)


def test_custom_job_cancelling_then_cancelled(cloud: Any) -> None:
    c = cloud(scenario="real-apis")
    S = aiplatform_v1.JobState
    name = f"projects/{P}/locations/us-central1/customJobs/3571428571428570520"
    job = c.vertex.get_custom_job(name=name, timeout=T, retry=None)
    assert job.state == S.JOB_STATE_CANCELLING and not job.end_time
    c.clock.set(41)
    job = c.vertex.get_custom_job(name=name, timeout=T, retry=None)
    assert job.state == S.JOB_STATE_CANCELLED and job.end_time.timestamp() == at(40)


# --- Cloud Build -----------------------------------------------------------------------------

ACTIVE = 'status="QUEUED" OR status="WORKING"'


def builds(c: SimpleNamespace, **request: Any) -> list[Any]:
    """Every build through the pager."""
    return list(c.build.list_builds(request={"project_id": P, **request}, timeout=T,
                                    retry=None))


def test_builds_active_filter_and_all(cloud: Any) -> None:
    c = cloud()
    B = cloudbuild_v1.Build.Status
    active = builds(c, filter=ACTIVE)
    assert [(b.id[:8], b.status) for b in active] == [
        ("4f5e6d7c", B.QUEUED), ("d3c2b1a0", B.QUEUED)]
    stale = active[1]
    assert stale.create_time.timestamp() == at(-900) and not stale.start_time
    assert stale.log_url == ("https://console.cloud.google.com/cloud-build/builds/"
                             f"{stale.id}?project=123456789012")
    everything = builds(c, page_size=50)
    assert [b.status for b in everything] == [
        B.QUEUED, B.QUEUED, B.SUCCESS, B.CANCELLED, B.TIMEOUT, B.FAILURE, B.SUCCESS]
    failure = everything[5]
    assert failure.project_id == P
    assert failure.failure_info.type_ == cloudbuild_v1.Build.FailureInfo.FailureType.USER_BUILD_STEP
    assert failure.failure_info.detail.startswith("Build step failure: build step 0")
    assert (failure.start_time.timestamp(), failure.finish_time.timestamp()) == (
        at(-69995), at(-69700))
    assert [s.status for s in failure.steps] == [B.FAILURE, B.QUEUED]
    assert everything[4].status_detail == "Build timed out after 1200s"
    assert [b.id[:8] for b in builds(c, filter='status="FAILURE"')] == ["9c8b7a6d"]


def test_builds_move_queued_working_success_failure(cloud: Any) -> None:
    c = cloud()
    B = cloudbuild_v1.Build.Status
    c.clock.set(10)
    assert {b.id[:8]: b.status for b in builds(c, filter=ACTIVE)} == {
        "b8a7c6d5": B.WORKING, "4f5e6d7c": B.WORKING, "d3c2b1a0": B.QUEUED}
    c.clock.set(20)
    now = {b.id[:8]: b for b in builds(c)}
    assert (now["4f5e6d7c"].status, now["b8a7c6d5"].status) == (B.SUCCESS, B.FAILURE)
    assert now["b8a7c6d5"].failure_info.type_ == \
        cloudbuild_v1.Build.FailureInfo.FailureType.PUSH_NOT_AUTHORIZED
    assert now["4f5e6d7c"].finish_time.timestamp() == at(14)
    assert [b.id[:8] for b in builds(c, filter=ACTIVE)] == ["d3c2b1a0"]


def test_legacy_builds_path_lists_global_builds_only(cloud: Any) -> None:
    # projects.builds.list: "only lists builds in the "global" region when using the legacy
    # resource path"; the client takes that path whenever project_id is set, `parent` or not
    c = cloud(scenario="real-apis")
    legacy = {b.id[:8] for b in builds(c)}
    assert legacy == {"a1e0c3d2"}
    with_parent = {b.id[:8] for b in builds(c, parent=f"projects/{P}/locations/us-central1")}
    assert with_parent == legacy
    regional = list(c.build.list_builds(
        request={"parent": f"projects/{P}/locations/us-central1"}, timeout=T, retry=None))
    assert [(b.id[:8], b.status) for b in regional] == [
        ("b2f1d4e3", cloudbuild_v1.Build.Status.WORKING), ("b2f1d4e3", cloudbuild_v1.Build.Status.FAILURE)]
    assert regional[0].name == f"projects/123456789012/locations/us-central1/builds/{regional[0].id}"
    assert regional[0].log_url.startswith(
        "https://console.cloud.google.com/cloud-build/builds;region=us-central1/")
    global_ = list(c.build.list_builds(
        request={"parent": f"projects/{P}/locations/global"}, timeout=T, retry=None))
    assert sorted(b.id for b in global_) == sorted(b.id for b in builds(c))
    assert list(c.build.list_builds(
        request={"parent": f"projects/{P}/locations/us-east1"}, timeout=T, retry=None)) == []


def test_builds_pending_approval(cloud: Any) -> None:
    c = cloud(scenario="real-apis")
    B = cloudbuild_v1.Build.Status
    pending = list(c.build.list_builds(
        request={"parent": f"projects/{P}/locations/europe-west2",
                 "filter": 'status="PENDING" OR status="QUEUED" OR status="WORKING"'},
        timeout=T, retry=None))
    assert [(b.id[:8], b.status) for b in pending] == [("c3a2e5f4", B.PENDING)]
    build = pending[0]
    assert build.approval.state == cloudbuild_v1.BuildApproval.State.PENDING
    assert build.approval.config.approval_required
    assert build.create_time.timestamp() == at(-1800) and not build.start_time
    assert [s.status for s in build.steps] == [B.PENDING]
    assert list(c.build.list_builds(
        request={"parent": f"projects/{P}/locations/europe-west2", "filter": 'status="QUEUED"'},
        timeout=T, retry=None)) == []


# --- Cloud Logging ---------------------------------------------------------------------------

def test_entries_of_two_or_ed_executions_newest_first(cloud: Any) -> None:
    c = cloud()
    names = ("vertex-ai-launcher-8hd4k", "vertex-ai-launcher-kbflt")
    found, pages = entries(c, by_execution(*names))
    assert pages == 1
    expected = len(log_lines(f"{names[0]}.log")) + len(log_lines(f"{names[1]}.log")) + 2
    assert len(found) == expected  # + each one's "Container called exit(1)."
    assert {e["labels"]["run.googleapis.com/execution_name"] for e in found} == set(names)
    stamps = [e["timestamp"] for e in found]
    assert stamps == sorted(stamps, reverse=True)
    first = found[0]
    assert first["labels"] == {"run.googleapis.com/execution_name": "vertex-ai-launcher-8hd4k",
                               "run.googleapis.com/task_index": "0",
                               "run.googleapis.com/task_attempt": "0"}
    assert first["resource"] == {"type": "cloud_run_job", "labels": {
        "job_name": "vertex-ai-launcher", "location": "us-central1", "project_id": P}}
    assert first["timestamp"] == rfc3339(at(-71700))
    assert first["logName"] == f"projects/{P}/logs/run.googleapis.com%2Fvarlog%2Fsystem"
    texts = [payload(e) for e in found]
    assert "google.api_core.exceptions.ResourceExhausted: 429 Quota 'NVIDIA_L4_GPUS' exceeded." \
           " Limit: 0.0 in region us-west2." in texts
    assert any("jsonPayload" in e for e in found)
    assert any("severity" not in e for e in found)
    assert {e["logName"].rsplit("%2F", 1)[1] for e in found} == {"stdout", "stderr", "system"}


def test_entries_paging_and_the_full_filter_form(cloud: Any) -> None:
    c = cloud()
    names = ("vertex-ai-launcher-p3w9n", "vertex-ai-launcher-w4j1s")
    whole, _ = entries(c, by_execution(*names))
    full_form = ('resource.type="cloud_run_job" AND resource.labels.job_name="vertex-ai-launcher"'
                 f" AND ({by_execution(*names)})")
    paged, pages = entries(c, full_form, page_size=25)
    assert pages == -(-len(whole) // 25)
    assert [e["insertId"] for e in paged] == [e["insertId"] for e in whole]
    assert entries(c, 'resource.type="cloud_run_revision" AND ' + by_execution(*names))[0] == []


def test_a_search_covers_one_day_per_request_so_pages_may_be_empty(cloud: Any) -> None:
    c = cloud()
    # c9x3d ran 26 h ago: the first request searches the newest day and finds nothing there,
    # yet says the search goes on (ListLogEntriesResponse.next_page_token, API reference)
    flt = by_execution("vertex-ai-launcher-c9x3d", since=-93600)
    body = {"resourceNames": [f"projects/{P}"], "filter": flt, "orderBy": "timestamp desc", "pageSize": 1000}
    first = c.logging.api_request(method="POST", path="/entries:list", data=body, timeout=10)
    assert "entries" not in first and first["nextPageToken"]
    found, pages = entries(c, flt)
    assert pages == 2 and len(found) == len(log_lines("vertex-ai-launcher-c9x3d.log"))
    # a filter without timestamp>= searches the whole 30-day retention, one day per request
    unbounded = f'{EXEC_LABEL}="vertex-ai-launcher-t2v6b"'
    found, pages = entries(c, unbounded)
    assert pages == 30 and len(found) == len(log_lines("vertex-ai-launcher-t2v6b.log")) + 1


def test_reads_beyond_the_project_quota_get_429_with_its_details(cloud: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "tight-quota"
    scenario.mkdir()
    (scenario / "scenario.json").write_text(
        '{"base": "%s", "logging": {"reads_per_minute": 2}}' % scenario_dir("default"))
    c = cloud(scenario=str(scenario))
    flt = by_execution("vertex-ai-launcher-t2v6b")
    entries(c, flt)
    entries(c, flt)
    with pytest.raises(gexc.TooManyRequests) as caught:
        entries(c, flt)
    error = caught.value
    assert error.reason == "RATE_LIMIT_EXCEEDED" and error.domain == "googleapis.com"
    assert error.metadata["quota_limit"] == "ReadRequestsPerMinutePerProject"
    assert error.metadata["quota_limit_value"] == "2"
    assert error.metadata["quota_metric"] == "logging.googleapis.com/read_requests"
    assert "Read requests per minute" in error.message


def test_entries_pages_fault(cloud: Any) -> None:
    c = cloud("logging:pages:4")
    whole, pages = entries(c, by_execution("vertex-ai-launcher-t2v6b"))
    assert pages == 4
    assert len(whole) == len(log_lines("vertex-ai-launcher-t2v6b.log")) + 1


def test_running_execution_logs_grow_with_time(cloud: Any) -> None:
    c = cloud()
    flt = by_execution("vertex-ai-launcher-h4k8w")
    early = len(entries(c, flt)[0])
    c.clock.set(6)
    late, _ = entries(c, flt)
    assert 0 < early < len(late) == len(log_lines("vertex-ai-launcher-h4k8w.log"))
    assert payload(late[0]) == "✓ Wrapper finished (exit 0)"
    assert "Runs: 2" in [payload(e) for e in late[:4]]


def test_parse_filter_reads_the_quoted_names() -> None:
    query = parse_filter('(labels."run.googleapis.com/execution_name"="a-1" OR '
                         'labels."run.googleapis.com/execution_name" = "b-2") AND '
                         'timestamp>="2025-06-15T00:00:00Z" AND severity>=ERROR')
    assert query.executions == frozenset({"a-1", "b-2"})
    assert query.after == (">=", 1749945600.0)
    assert query.min_severity == 500


# --- errors through the clients --------------------------------------------------------------

def test_status_403_on_run_is_forbidden(cloud: Any) -> None:
    c = cloud("run:status:403")
    with pytest.raises(gexc.Forbidden, match="Permission 'run.executions.list' denied on resource") as denied:
        executions(c)
    # api_core reads the ErrorInfo of the real body: what a caller can name without reading text
    assert (denied.value.reason, denied.value.metadata["permission"]) == ("IAM_PERMISSION_DENIED", "run.executions.list")


def test_status_503_on_build_is_service_unavailable(cloud: Any) -> None:
    c = cloud("build:status:503")
    began = time.monotonic()
    with pytest.raises(gexc.ServiceUnavailable):
        builds(c, filter=ACTIVE)
    assert time.monotonic() - began < 2


def test_status_429_on_logging_is_too_many_requests(cloud: Any) -> None:
    c = cloud("logging:status:429")
    with pytest.raises(gexc.TooManyRequests) as caught:
        entries(c, by_execution("vertex-ai-launcher-t2v6b"))
    assert caught.value.metadata["quota_limit"] == "ReadRequestsPerMinutePerProject"  # the real body


def test_malformed_bodies_raise_instead_of_hanging(cloud: Any) -> None:
    c = cloud("vertex:malformed", "run:malformed", "logging:malformed")
    began = time.monotonic()
    with pytest.raises(ParseError):
        custom_jobs(c)
    with pytest.raises(ParseError):
        executions(c)
    with pytest.raises(ValueError):  # requests' JSONDecodeError is a ValueError
        entries(c, by_execution("vertex-ai-launcher-t2v6b"))
    assert time.monotonic() - began < 2


def test_hang_is_a_requests_timeout(cloud: Any) -> None:
    c = cloud("run:hang")
    began = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        list(c.executions.list_executions(request={"parent": JOB}, timeout=0.3, retry=None))
    assert time.monotonic() - began < 1.5


# --- the sandbox process with the real clock -------------------------------------------------

def test_real_clients_against_the_sandbox_process() -> None:
    with Sandbox(read_env=False) as sandbox:
        c = make_clients(sandbox.gcp_endpoint)
        found = executions(c)
        assert len(found) == 6
        assert abs(found[0].create_time.timestamp() - (time.time() - 600)) < 5
        assert [b.id[:8] for b in builds(c, filter=ACTIVE)] == ["4f5e6d7c", "d3c2b1a0"]
        assert sandbox.stats()["requests"]["run"] == 1
