"""The Google sources: pure parsers on recorded API objects, and each fetch against the sandbox."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from google.cloud import aiplatform_v1, run_v2
from google.cloud.devtools import cloudbuild_v1


from arrctl.config import Config
from arrctl.model import TERMINAL_STATUSES, apply_facts, by_id, epoch, make_row, newest_first
from arrctl.sandbox import DEMO_REGIONS
from arrctl.sandbox.faults import parse_faults
from arrctl.sandbox.clock import ManualClock
from arrctl.sandbox.server import SandboxServer
from arrctl.sources import FetchContext, SourceError, builds, logread, runner, vertex

from fakes import FakeEmitter  # shared; other test modules import it from here

RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "recorded"
NOW = dt.datetime(2025, 11, 19, 0, 47, 0, tzinfo=dt.timezone.utc)
CONSOLE_RUN = "https://console.cloud.google.com/run/jobs/executions/details"
CONSOLE_VERTEX = "https://console.cloud.google.com/vertex-ai/locations"
LOG_VIEWER = "https://console.cloud.google.com/logs/viewer?project=arr-demo"


def recorded(name: str, field: str, cls, regions):
    """The objects of recorded list responses, one per region, as the client library builds them."""
    items = [item for region in regions
             for item in json.loads((RECORDED / name / f"{region}.json").read_text())[field]]
    return [cls.from_json(json.dumps(item), ignore_unknown_fields=True) for item in items]


RUN_REGIONS = ("us-central1", "europe-west2", "asia-northeast1")
BUILD_LOCATIONS = ("global", "us-central1")
VERTEX_REGIONS = ("us-central1", "europe-west4", "us-west1")


def recorded_executions():
    return recorded("run_list_executions", "executions", run_v2.Execution, RUN_REGIONS)


@pytest.mark.parametrize("name, field", [("run_list_executions", "executions"),
                                         ("build_list_builds", "builds"),
                                         ("vertex_list_custom_jobs", "customJobs")])
def test_recorded_responses_hold_one_region_each(name, field):
    # a list call names one parent: its answer never mixes regions (issue 14, item 9)
    files = sorted((RECORDED / name).glob("*.json"))
    assert len(files) >= 2
    for path in files:
        for item in json.loads(path.read_text())[field]:
            parts = item.get("name", f"projects/p/locations/global/x/{item.get('id')}").split("/")
            assert parts[parts.index("locations") + 1] == path.stem, (path.name, item.get("name"))


# --- runner: parse ------------------------------------------------------------------------

def run_row(execution: str, status: str, raw: str, region: str = "us-central1", **fields):
    extra = {"job": "vertex-ai-launcher", "task_count": 1, "succeeded": 0, "failed": 0, "cancelled": 0,
             "retried": 0, "running": 0, "log_uri": None, "condition": None, **fields.pop("extra", {})}
    return make_row("runner", execution, status, raw_status=raw, region=region, name="vertex-ai-launcher",
                    url=f"{CONSOLE_RUN}/{region}/{execution}/tasks?project=arr-demo", extra=extra, **fields)


def test_parse_execution_of_every_state():
    rows = [runner.parse_execution(e, NOW) for e in recorded_executions()]
    assert rows == [
        run_row("vertex-ai-launcher-p0d3k", "PENDING", "CONDITION_PENDING", created="2025-11-19T00:46:01Z"),
        run_row("vertex-ai-launcher-q7m2d", "RUNNING", "CONDITION_PENDING",
                created="2025-11-19T00:44:58.318Z", started="2025-11-19T00:45:04.911Z", duration_s=115.1,
                extra={"running": 1, "log_uri": LOG_VIEWER + "&advancedFilter=resource.type%3D%22cloud_run_job%22"}),
        # being cancelled: still running; the API's word says what it is doing
        run_row("vertex-ai-launcher-x4c8n", "RUNNING", "CANCELLING",
                created="2025-11-19T00:30:00Z", started="2025-11-19T00:30:04Z", duration_s=1016.0,
                extra={"running": 1}),
        run_row("vertex-ai-launcher-8kx2p", "FAILED", "NON_ZERO_EXIT_CODE",
                created="2025-11-19T00:12:03.512Z", started="2025-11-19T00:12:09.004Z",
                finished="2025-11-19T00:14:40.873Z", duration_s=151.9,  # message: from its logs, later
                extra={"failed": 1, "log_uri": LOG_VIEWER, "condition":
                       "Task vertex-ai-launcher-8kx2p-task0 failed with message: The container exited with an error."}),
        run_row("vertex-ai-launcher-c1n5b", "CANCELLED", "CANCELLED",
                created="2025-11-18T19:00:00Z", started="2025-11-18T19:00:04Z",
                finished="2025-11-18T19:01:10Z", duration_s=66.0, message="The execution was cancelled.",
                extra={"cancelled": 1, "condition": "The execution was cancelled."}),
        # three tasks: one failed for good, one cancelled with it, one retried: FAILED, not CANCELLED
        run_row("vertex-ai-launcher-k3t5p", "FAILED", "NON_ZERO_EXIT_CODE", region="europe-west2",
                created="2025-11-18T23:30:00Z", started="2025-11-18T23:30:05Z",
                finished="2025-11-18T23:41:05Z", duration_s=660.0,
                extra={"task_count": 3, "succeeded": 1, "failed": 1, "cancelled": 1, "retried": 1, "condition":
                       "Task vertex-ai-launcher-k3t5p-task1 failed with message: The container exited with an error."}),
        run_row("vertex-ai-launcher-w4c9t", "SUCCEEDED", "CONDITION_SUCCEEDED", region="europe-west2",
                created="2025-11-18T22:00:00Z", started="2025-11-18T22:00:06.500Z",
                finished="2025-11-18T22:03:36.500Z", duration_s=210.0,
                extra={"succeeded": 1, "log_uri": LOG_VIEWER,
                       "condition": "Execution completed successfully in 3m30s."}),
        # TIMEOUT because the API's reason says so; its logs are read like a failure's
        run_row("vertex-ai-launcher-t9m4e", "TIMEOUT", "PROGRESS_DEADLINE_EXCEEDED", region="asia-northeast1",
                created="2025-11-18T21:00:00Z", started="2025-11-18T21:00:04Z",
                finished="2025-11-18T22:00:04Z", duration_s=3600.0,
                extra={"failed": 1, "condition":
                       "Task vertex-ai-launcher-t9m4e-task0 failed with message: The configured timeout was reached."}),
        # the same words with NON_ZERO_EXIT_CODE: a failure (no decision from a message's wording)
        run_row("vertex-ai-launcher-z2r6h", "FAILED", "NON_ZERO_EXIT_CODE", region="asia-northeast1",
                created="2025-11-18T20:10:00Z", started="2025-11-18T20:10:05Z",
                finished="2025-11-18T20:20:05Z", duration_s=600.0,
                extra={"failed": 1, "condition":
                       "Task vertex-ai-launcher-z2r6h-task0 failed with message: The configured timeout was reached."}),
    ]


def test_newest_and_needs_logs():
    rows = [runner.parse_execution(e, NOW) for e in recorded_executions()]
    top = newest_first(rows, 3)
    assert [r["id"] for r in top] == ["vertex-ai-launcher-p0d3k", "vertex-ai-launcher-q7m2d",
                                      "vertex-ai-launcher-x4c8n"]
    todo = logread.needs_logs(runner.READER, rows, frozenset({"vertex-ai-launcher-w4c9t"}))
    # CANCELLED: no log read; TIMEOUT: read like a failure
    assert [r["id"] for r in todo] == ["vertex-ai-launcher-8kx2p", "vertex-ai-launcher-k3t5p",
                                       "vertex-ai-launcher-t9m4e", "vertex-ai-launcher-z2r6h"]


def test_every_value_in_a_log_filter_is_quoted():
    text = runner.log_filter('job"x', ['a") OR ("b', "c\\"], "2025-11-19T00:00:00Z")
    assert text == ('resource.type="cloud_run_job" AND resource.labels.job_name="job\\"x" AND '
                    '(labels."run.googleapis.com/execution_name"="a\\") OR (\\"b" OR '
                    'labels."run.googleapis.com/execution_name"="c\\\\") AND timestamp>="2025-11-19T00:00:00Z"')
    assert runner.filter_string("line\nbreak") == '"line\\nbreak"'


def test_log_filter_ors_the_executions():
    assert runner.log_filter("vertex-ai-launcher", ["a-1", "a-2"], "2025-11-19T00:00:00Z") == (
        'resource.type="cloud_run_job" AND resource.labels.job_name="vertex-ai-launcher" AND '
        '(labels."run.googleapis.com/execution_name"="a-1" OR '
        'labels."run.googleapis.com/execution_name"="a-2") AND timestamp>="2025-11-19T00:00:00Z"')


def test_group_entries_per_execution_in_api_order():
    label = "run.googleapis.com/execution_name"
    entries = [
        {"timestamp": "2025-11-19T00:00:03Z", "labels": {label: "b"}, "textPayload": "b3"},
        {"timestamp": "2025-11-19T00:00:02.5Z", "labels": {label: "a"}, "textPayload": "a2"},
        {"timestamp": "2025-11-19T00:00:01Z", "labels": {label: "a"}, "textPayload": "a1"},
        {"timestamp": "2025-11-19T00:00:00Z", "textPayload": "no label"},
    ]
    groups = runner.group_entries(entries)
    assert {k: [e["textPayload"] for e in v] for k, v in groups.items()} == {"b": ["b3"], "a": ["a2", "a1"]}


def analysis(verdict, message=None, rule=None, line=None, jobs=None, category=None):
    return SimpleNamespace(verdict=verdict, message=message, rule=rule, line=line, jobs=jobs, context=[],
                           category=category)


def test_conclude_fills_the_message_from_the_logs():
    failed = make_row("runner", "x-1", "FAILED", finished="2025-11-19T00:10:00Z",
                      extra={"condition": "Task x-1-task0 failed"})
    fact = runner.conclude(failed, analysis("failed", "403 Permission denied", "gcp-permission", 41,
                                            category="permission"))
    assert fact == {"source": "runner", "id": "x-1", "status": "FAILED", "verdict": "failed",
                    "message": "403 Permission denied", "rule": "gcp-permission", "jobs": None, "line": 41,
                    "finished": "2025-11-19T00:10:00Z", "category": "permission"}  # the analysis' own category
    # logs that name nothing specific: the platform's words, whose category is derived from them later
    assert runner.conclude(failed, analysis("unknown", category="unknown"))["category"] is None
    # logs that say nothing: Cloud Run's own condition message stays
    assert runner.conclude(failed, analysis("unknown"))["message"] == "Task x-1-task0 failed"
    ok = make_row("runner", "x-2", "SUCCEEDED")
    assert runner.conclude(ok, analysis("succeeded", None, "runs-count", 9, 5))["message"] == "Completed: 5 jobs"
    assert runner.conclude(ok, analysis("succeeded", "Completed: 2 jobs", jobs=2))["message"] == "Completed: 2 jobs"
    assert runner.conclude(ok, analysis("unknown"))["message"] == "Completed"


def test_facts_replace_only_the_messages_of_explained_rows():
    rows = [make_row("runner", "a", "FAILED"), make_row("runner", "b", "RUNNING"),
            make_row("runner", "c", "SUCCEEDED", extra={"job": "j"})]
    out = apply_facts(rows, by_id([{"id": "a", "message": "root cause", "jobs": None},
                                   {"id": "c", "message": "Completed: 4 jobs", "jobs": 4}]))
    assert [r["message"] for r in out] == ["root cause", None, "Completed: 4 jobs"]
    assert [r["extra"] for r in out] == [{}, {}, {"job": "j", "jobs": 4}]
    assert rows[0]["message"] is None and rows[2]["extra"] == {"job": "j"}  # inputs untouched


def test_settled_waits_for_late_logs():
    row = make_row("runner", "a", "FAILED", finished="2025-11-19T00:40:00Z")
    assert logread.settled(row, NOW)
    assert not logread.settled({**row, "finished": "2025-11-19T00:45:00Z"}, NOW)


def test_explain_rows_remembers_only_conclusive_or_settled_logs():
    label = "run.googleapis.com/execution_name"
    failed = make_row("runner", "f-1", "FAILED", finished="2025-11-19T00:46:00Z", extra={"condition": "Task failed"})
    quiet_new = make_row("runner", "q-1", "FAILED", finished="2025-11-19T00:46:00Z", extra={"condition": "Task failed"})
    quiet_old = make_row("runner", "q-2", "FAILED", finished="2025-11-18T00:00:00Z", extra={"condition": "Task failed"})
    groups = runner.group_entries([
        {"timestamp": "2025-11-19T00:45:59Z", "labels": {label: "f-1"},
         "textPayload": "google.api_core.exceptions.PermissionDenied: 403 Permission 'aiplatform.customJobs.create' denied"},
        {"timestamp": "2025-11-19T00:45:58Z", "labels": {label: "q-1"}, "textPayload": "starting agent"},
    ])
    facts = logread.explain_rows(runner.READER, [failed, quiet_new, quiet_old], groups, True, NOW)
    assert [(f["id"], f["verdict"]) for f in facts] == [("f-1", "failed"), ("q-2", "unknown")]
    assert facts[1]["message"] == "Task failed"  # settled logs that say nothing: Cloud Run's words
    assert facts[0]["message"] == "PermissionDenied: 403 Permission 'aiplatform.customJobs.create' denied"
    # a read cut short proves nothing about what it did not reach
    assert [f["id"] for f in logread.explain_rows(runner.READER, [quiet_old], groups, False, NOW)] == []


# --- builds: parse ------------------------------------------------------------------------

def build_row(build_id: str, status: str, raw: str, table: str, project: str = "arr-demo", **fields):
    extra = {"table": table, "queued_s": None, "images": [], "trigger": None, "branch": None, "commit": None,
             "logging": None, "log_object": None,  # where its log is: Cloud Logging unless GCS_ONLY says a bucket
             **({"api_message": fields["message"]} if fields.get("message") else {}),  # kept beside the logs' cause
             **fields.pop("extra", {})}
    fields.setdefault("url", f"https://console.cloud.google.com/cloud-build/builds/{build_id}?project={project}")
    return make_row("builds", build_id, status, raw_status=raw, region=fields.pop("region", "global"),
                    extra=extra, **fields)


def test_parse_build_of_every_status():
    rows = [builds.parse_build(b, NOW)
            for b in recorded("build_list_builds", "builds", cloudbuild_v1.Build, BUILD_LOCATIONS)]
    step_failure = ('Build step failure: build step 0 "gcr.io/cloud-builders/docker" failed: '
                    'step exited with non-zero status: 1')
    assert rows == [
        build_row("6f1c2a9e-51d3-4c55-9f0e-0b3f7a1d2c44", "QUEUED", "QUEUED", "active", project="123456789012",
                  name="arr-trainer-push", created="2025-11-19T00:40:00.250Z",
                  extra={"queued_s": 419.8, "images": ["arr-trainer:latest"], "trigger": "arr-trainer-push",
                         "branch": "main", "commit": "a1b2c3d"}),
        build_row("1a2b3c4d-0000-4000-8000-00000000f001", "FAILED", "FAILURE", "recent", project="123456789012",
                  name="arr-trainer-push", created="2025-11-18T23:00:00Z", started="2025-11-18T23:00:05Z",
                  finished="2025-11-18T23:07:35.500Z", duration_s=450.5, message=step_failure,
                  extra={"trigger": "arr-trainer-push"}),
        build_row("1a2b3c4d-0000-4000-8000-00000000f002", "SUCCEEDED", "SUCCESS", "recent", name="arr-base:v7",
                  created="2025-11-18T22:00:00Z", started="2025-11-18T22:00:03Z",
                  finished="2025-11-18T22:05:03Z", duration_s=300.0, extra={"images": ["arr-base:v7"]}),
        # the escape sequence and the newline of the API's text never reach the terminal raw
        build_row("1a2b3c4d-0000-4000-8000-00000000f003", "FAILED", "INTERNAL_ERROR", "recent",
                  created="2025-11-18T21:00:00Z", started="2025-11-18T21:00:02Z",
                  finished="2025-11-18T21:00:04Z", duration_s=2.0,
                  message="failed to fetch source: access denied ⏎ retry later"),
        build_row("1a2b3c4d-0000-4000-8000-00000000f004", "TIMEOUT", "TIMEOUT", "recent",
                  created="2025-11-18T20:00:00Z", started="2025-11-18T20:00:01Z",
                  finished="2025-11-18T21:00:01Z", duration_s=3600.0),
        build_row("1a2b3c4d-0000-4000-8000-00000000f005", "CANCELLED", "EXPIRED", "recent",
                  created="2025-11-18T18:00:00Z", finished="2025-11-18T19:00:00Z"),
        build_row("b2d7e8f1-0c1d-4e2f-a3b4-c5d6e7f80912", "RUNNING", "WORKING", "active", region="us-central1",
                  name="arr-launcher:latest", created="2025-11-19T00:38:00Z", started="2025-11-19T00:38:12Z",
                  duration_s=528.0,
                  url=("https://console.cloud.google.com/cloud-build/builds;region=us-central1/"
                       "b2d7e8f1-0c1d-4e2f-a3b4-c5d6e7f80912?project=123456789012"),
                  extra={"images": ["arr-launcher:latest"], "branch": "main"}),
    ]


def test_build_status_table_is_complete():
    for status in cloudbuild_v1.Build.Status:
        assert status.name in builds.STATUS


# --- vertex: parse ------------------------------------------------------------------------

def vertex_row(job_id: str, status: str, raw: str, region: str = "us-central1", code=None, **fields):
    extra = {"machine_type": None, "accelerator": None, "display_name": fields.get("name"),
             # the API's error, kept beside the root error that the job's logs name
             **({"api_message": fields["message"], "error_code": code} if fields.get("message") else {}),
             **fields.pop("extra", {})}
    return make_row("vertex", job_id, status, raw_status=raw, region=region,
                    url=f"{CONSOLE_VERTEX}/{region}/training/{job_id}/cpu?project=123456789012",
                    extra=extra, **fields)


def test_parse_custom_job_of_every_state():
    jobs = recorded("vertex_list_custom_jobs", "customJobs", aiplatform_v1.CustomJob, VERTEX_REGIONS)
    rows = [vertex.parse_custom_job(j, NOW) for j in jobs]
    assert rows == [
        vertex_row("4417205563728084992", "RUNNING", "JOB_STATE_RUNNING", name="arr-coc-train-ethereal-sun-42",
                   created="2025-11-19T00:30:00.120Z", started="2025-11-19T00:34:10Z", duration_s=770.0,
                   extra={"machine_type": "a2-highgpu-1g", "accelerator": "NVIDIA_TESLA_A100 x1"}),
        vertex_row("1203398456127127552", "SUCCEEDED", "JOB_STATE_SUCCEEDED", name="arr-coc-train-brisk-fog-40",
                   created="2025-11-18T20:00:00Z", started="2025-11-18T20:03:00Z",
                   finished="2025-11-18T21:03:00Z", duration_s=3600.0, extra={"machine_type": "n1-standard-4"}),
        vertex_row("9006161225127542784", "PENDING", "JOB_STATE_PENDING", name="arr-coc-train-quiet-leaf-43",
                   created="2025-11-19T00:44:00Z"),
        vertex_row("7781204436192288768", "FAILED", "JOB_STATE_FAILED", region="europe-west4",
                   name="arr-coc-train-misty-river-41", created="2025-11-18T23:10:00Z",
                   started="2025-11-18T23:10:40Z", finished="2025-11-18T23:12:00Z", duration_s=80.0,
                   message=("The following quota metrics exceed quota limits: "
                            "aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus ⏎ (limit 0)"), code=8,
                   extra={"machine_type": "g2-standard-8", "accelerator": "NVIDIA_L4 x2"}),
        # being cancelled is not cancelled yet: it may still end SUCCEEDED or FAILED
        vertex_row("3001", "UNKNOWN", "JOB_STATE_CANCELLING", region="us-west1", name="cancel-me",
                   created="2025-11-18T19:00:00Z", started="2025-11-18T19:00:30Z", duration_s=20790.0,
                   message="CustomJob projects/123456789012/locations/us-west1/customJobs/3001 is cancelled.", code=1),
        vertex_row("3002", "TIMEOUT", "JOB_STATE_EXPIRED", region="us-west1", created="2025-11-18T18:00:00Z"),
    ]


def test_vertex_status_table_is_complete():
    for state in aiplatform_v1.JobState:
        assert state.name in vertex.STATUS


# --- end to end against the sandbox ---------------------------------------------------------

# What the default scenario's failed executions' logs say (extracted by arrctl.extract).
FAILED_MESSAGES = {
    "vertex-ai-launcher-r1n7v":
        'InvalidArgument: 400 Accelerator "NVIDIA_TESLA_A100" is not supported for machine type "g2-standard-4".',
    "vertex-ai-launcher-t2v6b": "KeyError: 'runQueueItemId'",
    "vertex-ai-launcher-w4j1s":
        "Error while calling W&B API: run queue vertex-ai-queue not found in entity arr-demo (<Response [404]>)",
    "vertex-ai-launcher-p3w9n": "PermissionDenied: 403 Permission 'aiplatform.customJobs.create' denied on resource '//aiplatform.googleapis.com/projects/arr-demo/locations/us-central1' (or it may not exist).",
    "vertex-ai-launcher-8hd4k": "ResourceExhausted: 429 Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 0.0 in region us-west2.",
    "vertex-ai-launcher-kbflt": 'InvalidArgument: 400 Machine type "a3-highgpu-1g" is not supported.',
}
SUCCESS_MESSAGES = {
    "vertex-ai-launcher-h4k8w": "Completed: 2 jobs",
    "vertex-ai-launcher-m6y2r": "Completed: 0 jobs",
    "vertex-ai-launcher-q7m2x": "Completed: 3 jobs",
    "vertex-ai-launcher-c9x3d": "Completed: 5 jobs",
}


def start_sandbox(t: float = 0.0, faults=(), scenario: str = "default") -> SandboxServer:
    clock = ManualClock(now=time.time())  # scenario time pinned; wall time is today's
    clock.set(t)
    return SandboxServer(scenario, faults=parse_faults(faults), clock=clock).start()


@pytest.fixture
def make_sandbox():
    """Start in-process sandboxes (scenario time `t`, `faults`, `scenario`); all stopped after the test."""
    started = []

    def make(t: float = 0.0, faults=(), scenario: str = "default") -> SandboxServer:
        started.append(start_sandbox(t, faults, scenario))
        return started[-1]

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def sandbox(make_sandbox):
    return make_sandbox()


def requests_made(server: SandboxServer) -> dict[str, int]:
    """Request counters, read as any client would: GET /_sandbox/stats."""
    with urllib.request.urlopen(server.url + "/_sandbox/stats", timeout=5) as answer:
        return json.loads(answer.read())["requests"]


def context(server: SandboxServer, regions=DEMO_REGIONS, known=(), timeout=2.0, deadline=10.0, **config):
    cfg = Config(project="arr-demo", regions=list(regions), **config)
    return FetchContext(config=cfg, known_terminal=frozenset(known), gcp_endpoint=server.url,
                        call_timeout_s=timeout, deadline_s=deadline)


def summary(rows) -> list[tuple]:
    return [(r["id"], r["status"], r["region"], r["message"]) for r in rows]


RUNNER_AT_0 = [
    ("vertex-ai-launcher-r1n7v", "RUNNING", "europe-west2", None),
    ("vertex-ai-launcher-h4k8w", "RUNNING", "us-central1", None),
    ("vertex-ai-launcher-m6y2r", "SUCCEEDED", "asia-northeast1", "Completed: 0 jobs"),
    ("vertex-ai-launcher-q7m2x", "SUCCEEDED", "us-central1", "Completed: 3 jobs"),
    ("vertex-ai-launcher-t2v6b", "FAILED", "us-central1", "KeyError: 'runQueueItemId'"),
]


def test_runner_newest_five_of_18_regions_with_one_log_read(sandbox):
    emit = FakeEmitter()
    runner.fetch(context(sandbox), emit)
    assert emit.planned == list(DEMO_REGIONS)
    parts = emit.by_part()
    assert sorted(parts) == sorted(DEMO_REGIONS)  # every region answered, each as its own part
    assert {r: len(rows) for r, rows in parts.items() if rows} == {
        "us-central1": 5, "europe-west2": 3, "asia-northeast1": 2}
    assert summary(emit.final()) == RUNNER_AT_0
    assert [f["id"] for f in emit.facts_sent] == [
        "vertex-ai-launcher-m6y2r", "vertex-ai-launcher-q7m2x", "vertex-ai-launcher-t2v6b"]
    failed = emit.facts_sent[2]
    assert failed["verdict"] == "failed" and failed["rule"] == "python.exception"
    assert failed["status"] == "FAILED" and failed["line"] == 40
    assert emit.facts_sent[1]["jobs"] == 3
    assert emit.calls == {"run": 18, "logging": 1}
    assert requests_made(sandbox)["run"] == 18 and requests_made(sandbox)["logging"] == 1
    row = emit.final()[4]
    assert row["url"] == ("https://console.cloud.google.com/run/jobs/executions/details/us-central1/"
                          "vertex-ai-launcher-t2v6b/tasks?project=arr-demo")
    assert row["duration_s"] == 90.0 and row["raw_status"] == "NON_ZERO_EXIT_CODE"


def test_runner_explains_every_terminal_execution_with_one_query(make_sandbox):
    sandbox = make_sandbox(t=20.0)
    emit = FakeEmitter()
    runner.fetch(context(sandbox, runner_limit=12), emit)
    rows = emit.final()
    assert len(rows) == 12 and rows[0]["id"] == "vertex-ai-launcher-b7t3q"  # appeared at 15 s
    failed = {r["id"]: r["message"] for r in rows if r["status"] == "FAILED"}
    assert {k: v for k, v in failed.items() if k in FAILED_MESSAGES} == FAILED_MESSAGES
    assert failed["vertex-ai-launcher-z5r8c"].startswith(
        'Failed to pull image "us-central1-docker.pkg.dev/arr-demo/arr-coc-registry/arr-vertex-launcher:v7"')
    assert {r["id"]: r["message"] for r in rows if r["status"] == "SUCCEEDED"} == SUCCESS_MESSAGES
    assert len(emit.facts_sent) == 11
    # one query; the oldest execution is 26 h old, and a request searches one day of logs
    assert requests_made(sandbox)["logging"] == 2 and len(emit.log_reports) == 1


def test_runner_reads_no_logs_for_known_terminal_executions(sandbox):
    emit = FakeEmitter()
    known = {"vertex-ai-launcher-m6y2r", "vertex-ai-launcher-q7m2x", "vertex-ai-launcher-t2v6b"}
    runner.fetch(context(sandbox, known=known), emit)
    assert requests_made(sandbox)["logging"] == 0
    assert emit.facts_sent == [] and "logging" not in emit.calls
    # no message: the supervisor fills it from its memory
    assert summary(emit.final()) == [row[:3] + (None,) for row in RUNNER_AT_0]
    assert emit.final()[4]["extra"]["condition"] == (
        "Task vertex-ai-launcher-t2v6b-task0 failed with message: The container exited with an error.")


def test_runner_paged_answers_give_the_same_rows(make_sandbox):
    sandbox = make_sandbox(faults=["run:pages:3", "logging:pages:3"])
    emit = FakeEmitter()
    runner.fetch(context(sandbox), emit)
    assert summary(emit.final()) == RUNNER_AT_0
    counts = requests_made(sandbox)
    assert counts["run"] > 18 and counts["logging"] == 3  # pages followed, and bounded


def test_runner_forbidden_is_one_line_naming_403(make_sandbox):
    sandbox = make_sandbox(faults=["run:status:403"])
    emit = FakeEmitter()
    with pytest.raises(SourceError) as caught:
        runner.fetch(context(sandbox), emit)
    text = str(caught.value)
    assert text.startswith("18 of 18 regions failed: us-central1, us-east1 and 16 more: 403 Forbidden: ")
    assert "\n" not in text and len(text) < 400
    assert requests_made(sandbox)["run"] == 18  # no hidden retries


def test_runner_failed_log_read_keeps_the_rows(make_sandbox):
    sandbox = make_sandbox(faults=["logging:status:403"])
    emit = FakeEmitter()
    with pytest.raises(SourceError) as caught:
        runner.fetch(context(sandbox), emit)
    assert str(caught.value).startswith("logs: 403 Forbidden: ")
    assert [r[0] for r in summary(emit.final())] == [r[0] for r in RUNNER_AT_0]
    assert emit.facts_sent == []  # nothing remembered: the next refresh reads them again
    # unexplained, so not remembered; meanwhile Cloud Run's own words, marked as such (issue 12)
    final = emit.final()
    assert [r["message"] for r in final] == [
        None, None, "Cloud Run: Execution completed successfully in 15m0.00s.",
        "Cloud Run: Execution completed successfully in 29m52.00s.",
        "Cloud Run: Task vertex-ai-launcher-t2v6b-task0 failed with message: The container exited with an error."]
    assert [r["extra"].get("logs_unread") for r in final] == [None, None, True, True, True]
    assert final[4]["extra"]["condition"] == (
        "Task vertex-ai-launcher-t2v6b-task0 failed with message: The container exited with an error.")


def test_a_regions_rows_sent_before_the_log_read_are_marked_unread(make_sandbox):
    """Were the worker killed before its log read, the merged regions' rows would be remembered
    unexplained: they carry the one mark of "not explained" (extra.logs_unread) from the start."""
    sandbox = make_sandbox(faults=["logging:status:403"])
    emit = FakeEmitter()
    with pytest.raises(SourceError):
        runner.fetch(context(sandbox), emit)
    parts = [row for part, rows in emit.parts if part is not None for row in rows]
    terminal = {r["id"] for r in parts if r["status"] in runner.READ_LOGS}
    assert terminal and {r["id"] for r in parts if r["extra"].get("logs_unread")} == terminal
    from arrctl.refresh import facts_from_rows
    from arrctl.model import SourceResult

    assert facts_from_rows({"runner": SourceResult("runner", rows=parts)}, {"runner": {}}) == []


def test_runner_malformed_answers(make_sandbox):
    sandbox = make_sandbox(faults=["run:malformed"])
    with pytest.raises(SourceError) as caught:
        runner.fetch(context(sandbox), FakeEmitter())
    assert "18 of 18 regions failed" in str(caught.value) and "malformed response" in str(caught.value)


def test_runner_hang_is_bounded_by_the_call_timeout(make_sandbox):
    sandbox = make_sandbox(faults=["run:hang"])
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        runner.fetch(context(sandbox, timeout=0.3), FakeEmitter())
    assert time.monotonic() - started < 3
    assert str(caught.value) == "18 of 18 regions failed: us-central1, us-east1 and 16 more: no answer within 0.3s"


def test_runner_one_region_failing_keeps_the_others(sandbox):
    # The sandbox's faults are per service, so a region name the client refuses stands in
    # for one region's failure.
    emit = FakeEmitter()
    regions = ["us-central1", "bad/region", "europe-west2"]
    with pytest.raises(SourceError) as caught:
        runner.fetch(context(sandbox, regions=regions), emit)
    assert str(caught.value) == "1 of 3 regions failed: bad/region: ValueError: Invalid request."
    assert sorted(p for p, _ in emit.parts if p) == ["europe-west2", "us-central1"]
    assert [r[0] for r in summary(emit.final())] == [
        "vertex-ai-launcher-r1n7v", "vertex-ai-launcher-h4k8w", "vertex-ai-launcher-q7m2x",
        "vertex-ai-launcher-t2v6b", "vertex-ai-launcher-w4j1s"]
    assert len(emit.facts_sent) == 3  # the log read still happened


BUILDS_AT_0 = {
    "active": [("4f5e6d7c-8b9a-4a0b-9c1d-2e3f4a5b6c66", "QUEUED"), ("d3c2b1a0-9f8e-4d7c-a6b5-c4d3e2f1a065", "QUEUED")],
    "recent": [("0a1b2c3d-4e5f-4061-8798-a9b0c1d2e364", "SUCCEEDED"),
               ("7e6d5c4b-3a29-4180-9f8e-7d6c5b4a3963", "CANCELLED"),
               ("2b4d6f80-a1c3-4e5f-b7d9-0e2f4a6c8e62", "TIMEOUT"),
               ("9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61", "FAILED")],
}


def builds_by_table(rows) -> dict:
    tables: dict = {"active": [], "recent": []}
    for row in rows:
        tables[row["extra"]["table"]].append((row["id"], row["status"]))
    return tables


BUILD_LOCATIONS_AT_0 = ["global", *DEMO_REGIONS]


def test_builds_active_and_recent(sandbox):
    emit = FakeEmitter()
    builds.fetch(context(sandbox), emit)
    assert emit.planned == BUILD_LOCATIONS_AT_0  # every location is a part
    assert sorted(emit.by_part()) == sorted(BUILD_LOCATIONS_AT_0)
    assert builds_by_table(emit.final()) == BUILDS_AT_0
    assert builds_by_table(emit.by_part()["global"]) == BUILDS_AT_0  # the default cloud builds in global
    rows = {r["id"]: r for r in emit.final()}
    queued = rows["d3c2b1a0-9f8e-4d7c-a6b5-c4d3e2f1a065"]
    # queued since the sandbox's clock put it 900 s before the sandbox started; the fetch reads
    # the wall clock later, so the figure is at least 900 s and grows with how late the fetch ran
    assert queued["extra"]["table"] == "active" and 900.0 <= queued["extra"]["queued_s"] < 900.0 + 600
    assert rows["2b4d6f80-a1c3-4e5f-b7d9-0e2f4a6c8e62"]["message"] == "Build timed out after 1200s"
    # pip's error above the wrapper "build step 0 ... failed", read from the build's log; the API's stays in extra
    failed = rows["9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61"]
    assert failed["message"] == "No matching distribution found for arr-coc-kernels==0.4.2"
    assert failed["extra"]["api_message"] == (
        'Build step failure: build step 0 "gcr.io/cloud-builders/docker" failed: step exited with non-zero status: 1')
    assert [(f["id"], f["rule"]) for f in emit.facts_sent] == [
        ("2b4d6f80-a1c3-4e5f-b7d9-0e2f4a6c8e62", None),  # a timeout with no log keeps "Build timed out after 1200s"
        ("9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61", "python.pip")]
    calls = 2 * len(BUILD_LOCATIONS_AT_0)  # active and recent of each location
    assert emit.calls == {"build": calls, "logging": 1} and requests_made(sandbox)["build"] == calls


def test_builds_paged_answers_give_the_same_rows(make_sandbox):
    sandbox = make_sandbox(faults=["build:pages:3"])
    emit = FakeEmitter()
    builds.fetch(context(sandbox), emit)
    assert builds_by_table(emit.final()) == BUILDS_AT_0
    assert requests_made(sandbox)["build"] == emit.calls["build"] > 2 * len(BUILD_LOCATIONS_AT_0)


def test_builds_unavailable_is_not_retried_for_ten_minutes(make_sandbox):
    sandbox = make_sandbox(faults=["build:status:503"])
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        builds.fetch(context(sandbox), FakeEmitter())
    assert time.monotonic() - started < 3
    assert str(caught.value).startswith(
        "19 of 19 locations failed: global, us-central1 and 17 more: 503 Service Unavailable: ")
    assert requests_made(sandbox)["build"] == 2 * len(BUILD_LOCATIONS_AT_0)  # no hidden retries


VERTEX_OOM = ("workerpool0-0: torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB. GPU "
              "0 has a total capacty of 22.03 GiB of which 1.12 GiB is free. Of the allocated memory 19.87 GiB "
              "is allocated by PyTorch, and 612.45 MiB is reserved by PyTorch but unallocated. If reserved but "
              "unallocated memory is large try setting max_split_size_mb to avoid fragmentation.  See "
              "documentation for Memory Management and\u2026")
VERTEX_WRAPPER = (
    "The replica workerpool0-0 exited with a non-zero status of 1. Termination reason: Error. To find out more "
    "about why your job exited please check the logs: https://console.cloud.google.com/logs/viewer?project="
    "123456789012&resource=ml_job%2Fjob_id%2F1428571428571428013")
VERTEX_AT_0 = [
    ("1428571428571428031", "PENDING", "us-central1", None),
    ("1428571428571428061", "SUCCEEDED", "us-central1", None),
    ("1428571428571428022", "RUNNING", "us-central1", None),
    ("1428571428571428012", "PENDING", "us-central1", None),
    # the root error its replica's own log names, not the API's wrapper (kept in extra.api_message)
    ("1428571428571428013", "FAILED", "us-central1", VERTEX_OOM),
    ("1428571428571428011", "SUCCEEDED", "us-central1", None),
    ("1428571428571428041", "CANCELLED", "us-central1", "CANCELED"),
    ("2857142857142856002", "FAILED", "europe-west4",
     "Quota exceeded for aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus with base model: "
     "requested 1, limit 0 in region europe-west4."),
    ("2857142857142856001", "SUCCEEDED", "europe-west4", None),
    ("1428571428571428001", "SUCCEEDED", "us-central1", None),
]  # the 10 newest ([vertex] limit); 1428571428571428099, created 48 h ago, is the 11th


def test_vertex_every_region_newest_first(sandbox):
    emit = FakeEmitter()
    vertex.fetch(context(sandbox), emit)
    assert emit.planned == list(DEMO_REGIONS) and sorted(emit.by_part()) == sorted(DEMO_REGIONS)
    assert summary(emit.final()) == VERTEX_AT_0
    assert emit.final()[2]["extra"] == {"machine_type": "g2-standard-4", "accelerator": "NVIDIA_L4 x1",
                                        "display_name": "arr-coc-train-s4d8f2gh"}
    # one Logging query for the two newly failed jobs of two regions
    assert emit.calls == {"vertex": 18, "logging": 1} and requests_made(sandbox)["vertex"] == 18
    failed = {r["id"]: r for r in emit.final() if r["status"] == "FAILED"}
    assert failed["1428571428571428013"]["extra"]["api_message"] == VERTEX_WRAPPER
    assert [(f["id"], f["verdict"], f["rule"], f["message"] == failed[f["id"]]["message"]) for f in emit.facts_sent] == [
        ("1428571428571428013", "failed", "memory.cuda_oom", True),
        # failed when it was created: no log at all, the API's quota message stays
        ("2857142857142856002", "unknown", None, True)]


def test_vertex_limit(sandbox):
    emit = FakeEmitter()
    vertex.fetch(context(sandbox, vertex_limit=3), emit)
    assert summary(emit.final()) == VERTEX_AT_0[:3]


def test_vertex_paged_answers_give_the_same_rows(make_sandbox):
    sandbox = make_sandbox(faults=["vertex:pages:3"])
    emit = FakeEmitter()
    vertex.fetch(context(sandbox), emit)
    assert summary(emit.final()) == VERTEX_AT_0
    assert requests_made(sandbox)["vertex"] > 18


def test_vertex_hang_is_a_bounded_error(make_sandbox):
    sandbox = make_sandbox(faults=["vertex:hang"])
    started = time.monotonic()
    emit = FakeEmitter()
    with pytest.raises(SourceError) as caught:
        vertex.fetch(context(sandbox, timeout=0.3), emit)
    assert time.monotonic() - started < 3
    assert str(caught.value) == "18 of 18 regions failed: us-central1, us-east1 and 16 more: no answer within 0.3s"
    assert emit.final() == []


def test_vertex_one_region_failing_keeps_the_others(sandbox):
    emit = FakeEmitter()
    with pytest.raises(SourceError) as caught:
        vertex.fetch(context(sandbox, regions=["us-central1", "bad/region", "europe-west4"]), emit)
    assert str(caught.value) == "1 of 3 regions failed: bad/region: ValueError: Invalid request."
    assert summary(emit.final()) == VERTEX_AT_0


def test_vertex_too_many_requests(make_sandbox):
    sandbox = make_sandbox(faults=["vertex:status:429"])
    with pytest.raises(SourceError) as caught:
        vertex.fetch(context(sandbox), FakeEmitter())
    assert "429 Too Many Requests: " in str(caught.value)
    assert requests_made(sandbox)["vertex"] == 18


def test_runner_job_deployed_nowhere(sandbox):
    # 404 in one region means "not deployed here" (normal); in every region, a config mistake
    emit = FakeEmitter()
    with pytest.raises(SourceError) as caught:
        runner.fetch(context(sandbox, runner_job="no-such-job"), emit)
    assert str(caught.value) == "job no-such-job not found in any of the 18 regions"
    assert requests_made(sandbox)["logging"] == 0


# --- what the real APIs do (issue 14), through the real clients against the fake ---------------

def test_builds_of_every_location_through_regional_paths(make_sandbox):
    # the legacy path lists global builds only: regional ones (private pools, 2nd-gen
    # repositories, regional triggers) appear only through projects/P/locations/R/builds
    sandbox = make_sandbox(scenario="real-apis")
    emit = FakeEmitter()
    builds.fetch(context(sandbox), emit)
    assert builds_by_table(emit.final()) == {
        "active": [("a1e0c3d2-1112-4a0b-9c1d-2e3f4a5b6c02", "QUEUED"),
                   ("b2f1d4e3-2221-4b1c-8d2e-3f4a5b6c7d01", "RUNNING"),
                   ("c3a2e5f4-3331-4c2d-9e3f-4a5b6c7d8e01", "PENDING")],
        "recent": [("d4b3f6a5-4441-4d3e-8f4a-5b6c7d8e9f01", "SUCCEEDED"),
                   ("b2f1d4e3-2222-4b1c-8d2e-3f4a5b6c7d02", "FAILED"),
                   ("a1e0c3d2-1111-4a0b-9c1d-2e3f4a5b6c01", "SUCCEEDED")]}
    rows = {r["id"][:8]: r for r in emit.final()}
    assert {k: r["region"] for k, r in rows.items()} == {
        "a1e0c3d2": "global", "b2f1d4e3": "us-central1", "c3a2e5f4": "europe-west2", "d4b3f6a5": "asia-northeast1"}
    pending = rows["c3a2e5f4"]  # waiting for approval: active, with its time in the queue
    assert (pending["raw_status"], pending["extra"]["table"], pending["extra"]["queued_s"]) == (
        "PENDING", "active", 1800.0)
    assert [r["id"][:8] for r in emit.by_part()["europe-west2"]] == ["c3a2e5f4"]


def test_builds_never_send_project_id_beside_parent():
    # with project_id set the client keeps the legacy path (cloudbuild_v1 rest_base.py
    # _BaseListBuilds: "/v1/projects/{project_id}/builds" is tried first)
    from google.api_core import path_template
    from google.cloud.devtools.cloudbuild_v1.services.cloud_build.transports.rest_base import (
        _BaseCloudBuildRestTransport as Base)

    request = builds.list_request("arr-demo", "us-central1", "active", 50)
    assert set(request) == {"parent", "filter", "page_size"}
    assert request["filter"] == 'status="PENDING" OR status="QUEUED" OR status="WORKING"'
    rules = Base._BaseListBuilds._get_http_options()
    wire = path_template.transcode(rules, cloudbuild_v1.ListBuildsRequest.pb(cloudbuild_v1.ListBuildsRequest(**request)))
    assert wire["uri"] == "/v1/projects/arr-demo/locations/us-central1/builds"
    both = path_template.transcode(rules, cloudbuild_v1.ListBuildsRequest.pb(
        cloudbuild_v1.ListBuildsRequest(project_id="arr-demo", **request)))
    assert both["uri"] == "/v1/projects/arr-demo/builds"  # what the old request did
    assert builds.locations(["us-central1", "global", "europe-west2", "us-central1"]) == [
        "global", "us-central1", "europe-west2"]


def test_builds_one_location_failing_keeps_the_others(make_sandbox):
    sandbox = make_sandbox(scenario="real-apis")
    emit = FakeEmitter()
    with pytest.raises(SourceError) as caught:
        builds.fetch(context(sandbox, regions=["us-central1", "bad/region"]), emit)
    assert str(caught.value) == "1 of 3 locations failed: bad/region: ValueError: Invalid request."
    assert sorted(p for p, _ in emit.parts if p) == ["global", "us-central1"]
    assert {r["region"] for r in emit.final()} == {"global", "us-central1"}


def vertex_truth(sandbox: SandboxServer, regions, window_s: float) -> list[str]:
    """Ids of every job of the regions created in the window, newest first, from the fake's own world."""
    from arrctl.sandbox.scenario import World

    world = World.shared(sandbox.directory, sandbox.clock)
    t = sandbox.clock.t()
    jobs = [j for j in world.custom_jobs if j.region in regions and j.timeline.visible(t)
            and t - j.timeline.created <= window_s]
    return [j.id for j in sorted(jobs, key=lambda j: (j.timeline.created, j.id), reverse=True)]


def test_vertex_sorts_an_unordered_list_itself(make_sandbox):
    # the fake lists in no particular order over 3 pages: the first pages are not the newest
    sandbox = make_sandbox(faults=["vertex:pages:3"])
    emit = FakeEmitter()
    vertex.fetch(context(sandbox, regions=["us-central1"], vertex_limit=2), emit)
    assert [r["id"] for r in emit.final()] == ["1428571428571428031", "1428571428571428061"]
    assert emit.calls == {"vertex": 3}  # every page of the window: the newest may be on the last


def test_vertex_lists_the_window_shown(make_sandbox):
    sandbox = make_sandbox(scenario="real-apis")
    emit = FakeEmitter()
    vertex.fetch(context(sandbox, regions=["us-central1", "europe-west4"], vertex_limit=30), emit)
    ids = [r["id"] for r in emit.final()]
    assert "3571428571428570599" not in ids  # created 40 days ago: outside the 30-day window
    assert ids == vertex_truth(sandbox, ("us-central1", "europe-west4"), 30 * 86400)
    assert len(ids) == 15 and ids[:2] == ["3571428571428570521", "3571428571428570520"]
    assert vertex.window_filter(dt.datetime(2025, 11, 19, tzinfo=dt.timezone.utc), 86400) == \
        'create_time>="2025-11-18T00:00:00Z"'


def test_vertex_busy_region_narrows_the_window(make_sandbox, monkeypatch):
    # more jobs in the window than the walk may read: the newest are found in a narrower one
    monkeypatch.setattr(vertex, "PAGE_SIZE", 2)
    monkeypatch.setattr(vertex, "MAX_PAGES", 2)
    sandbox = make_sandbox(scenario="real-apis")
    emit = FakeEmitter()
    vertex.fetch(context(sandbox, regions=["us-central1"], vertex_limit=2), emit)
    assert [r["id"] for r in emit.final()] == ["3571428571428570521", "3571428571428570520"]
    assert emit.calls == {"vertex": 2 + 2 + 1}  # 30 days: cut short; 1 day: cut short; 1 hour: whole
    assert requests_made(sandbox)["vertex"] == 5


def test_vertex_cancelling_is_neither_cancelled_nor_a_started_job(make_sandbox):
    from arrctl.launch import JOB_STARTED, LaunchWaiter

    sandbox = make_sandbox(scenario="real-apis")
    emit = FakeEmitter()
    vertex.fetch(context(sandbox, regions=["us-central1"], vertex_limit=2), emit)
    cancelling = emit.final()[1]
    assert (cancelling["id"], cancelling["raw_status"]) == ("3571428571428570520", "JOB_STATE_CANCELLING")
    assert cancelling["status"] not in TERMINAL_STATUSES | JOB_STARTED
    assert cancelling["finished"] is None and cancelling["duration_s"] == 1100.0  # still running its course
    waiter = LaunchWaiter("vertex-ai-launcher-x", started_at=(epoch(cancelling["created"]) or 0) - 1, timeout_s=60)
    assert waiter.on_vertex([cancelling]) is None  # launch neither succeeds nor fails on it


REAL_APIS_RUNNER = [
    ("vertex-ai-launcher-cx7n8", "RUNNING", "CANCELLING", None),
    ("vertex-ai-launcher-dl6w3", "FAILED", "NON_ZERO_EXIT_CODE", "DeadlineExceeded: 504 Deadline Exceeded"),
    ("vertex-ai-launcher-to5x2", "TIMEOUT", "PROGRESS_DEADLINE_EXCEEDED",
     "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='asia-northeast1-aiplatform.googleapis.com', port=443): "
     "Read timed out. (read timeout=600)"),
    ("vertex-ai-launcher-mt4k1", "FAILED", "NON_ZERO_EXIT_CODE", "KeyError: 'runQueueItemId'"),
    ("vertex-ai-launcher-rt3f9", "FAILED", "NON_ZERO_EXIT_CODE",
     "ResourceExhausted: 429 Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 0.0 in region us-central1."),
    ("vertex-ai-launcher-rt2s0", "SUCCEEDED", "CONDITION_SUCCEEDED", "Completed: 2 jobs"),
]


def test_runner_judges_the_last_attempt_of_each_task(make_sandbox):
    sandbox = make_sandbox(scenario="real-apis")
    emit = FakeEmitter()
    runner.fetch(context(sandbox, runner_limit=10), emit)
    rows = emit.final()
    assert [(r["id"], r["status"], r["raw_status"], r["message"]) for r in rows] == REAL_APIS_RUNNER
    facts = {f["id"]: f for f in emit.facts_sent}
    # retried then succeeded: the success summary, never the first attempt's LaunchError
    assert facts["vertex-ai-launcher-rt2s0"]["verdict"] == "succeeded"
    assert facts["vertex-ai-launcher-rt2s0"]["jobs"] == 2
    # a TIMEOUT has its logs read, like a failure
    assert facts["vertex-ai-launcher-to5x2"]["status"] == "TIMEOUT"
    assert facts["vertex-ai-launcher-to5x2"]["verdict"] == "failed"
    assert {r["id"]: r["extra"]["retried"] for r in rows if r["extra"]["retried"]} == {
        "vertex-ai-launcher-rt3f9": 1, "vertex-ai-launcher-rt2s0": 1}
    assert requests_made(sandbox)["logging"] == 1


def test_last_attempts_keeps_each_tasks_newest_attempt():
    def entry(task, attempt, text):
        labels = {"run.googleapis.com/execution_name": "x"}
        if task is not None:
            labels.update({"run.googleapis.com/task_index": task, "run.googleapis.com/task_attempt": attempt})
        return {"labels": labels, "textPayload": text}

    entries = [entry("0", "1", "t0 a1"), entry("1", "0", "t1 a0"), entry("0", "0", "t0 a0"),
               entry("0", "10", "t0 a10"), entry(None, None, "no labels"), entry("1", "x", "bad label")]
    assert [e["textPayload"] for e in runner.last_attempts(entries)] == [
        "t1 a0", "t0 a10", "no labels", "bad label"]
    assert list(runner.by_task(runner.last_attempts(entries))) == ["0", "1", ""]
