"""A build that keeps its log in a Cloud Storage bucket only (options.logging GCS_ONLY) is explained
from that object's tail (issue 15.3): where the object is, the fake's media downloads through the
real storage client, and end to end read once ever beside the Cloud Logging query of the others."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from arrctl import health
from arrctl.config import Config
from arrctl.model import make_row
from arrctl.refresh import Endpoints, Refresher
from arrctl.sources import FetchContext, bucketlog, builds
from arrctl.store import Store

from test_logs import FakeClock
from test_sources_gcp import FakeEmitter

pytestmark = pytest.mark.timeout(120)
PUSH_BUILD = "b8a7c6d5-e4f3-4210-8fed-cba987654367"  # default scenario: GCS_ONLY, fails at 19 s
PUSH_OBJECT = f"gs://arr-demo-build-logs/cloudbuild/log-{PUSH_BUILD}.txt"
PUSH_DENIED = ('denied: Permission "artifactregistry.repositories.uploadArtifacts" denied on resource '
               '"projects/arr-demo/locations/us-central1/repositories/arr-coc-registry" (or it may not exist)')
PIP_BUILD = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61"  # LEGACY: read from Cloud Logging
PIP_ERROR = "No matching distribution found for arr-coc-kernels==0.4.2"
STEP_1_FAILED = ('Build step failure: build step 1 "gcr.io/cloud-builders/docker" failed: step exited with '
                 'non-zero status: 1')


def requests_of(server, service: str) -> int:
    with urllib.request.urlopen(server.url + "/_sandbox/stats", timeout=5) as answer:
        return json.loads(answer.read())["requests"][service]


def storage(server):
    from arrctl.sources import clients
    return clients.storage_client(ctx_of(server))


def ctx_of(server) -> FetchContext:
    return FetchContext(config=Config(project="arr-demo", regions=[]), gcp_endpoint=server.url,
                        call_timeout_s=3.0, deadline_s=10.0)


# --- pure ----------------------------------------------------------------------------------------

def test_the_log_object_is_log_id_txt_under_the_buckets_path():
    assert bucketlog.object_of("gs://logs-b", "ID") == ("logs-b", "log-ID.txt")
    assert bucketlog.object_of("gs://logs-b/ci/builds", "ID") == ("logs-b", "ci/builds/log-ID.txt")
    assert bucketlog.object_of("gs://logs-b/ci/", "ID") == ("logs-b", "ci/log-ID.txt")
    assert bucketlog.uri("", "ID") is None and bucketlog.uri("gs://", "ID") is None


def test_only_a_gcs_only_build_is_read_from_its_bucket_and_a_build_without_logs_not_at_all():
    from google.cloud.devtools import cloudbuild_v1 as cb

    def build(mode):
        return cb.Build(id="ID", status=cb.Build.Status.FAILURE, logs_bucket="gs://logs-b/ci",
                        options=cb.BuildOptions(logging=mode))

    now = __import__("datetime").datetime.now(__import__("datetime").timezone.utc)
    M = cb.BuildOptions.LoggingMode
    rows = {m.name: builds.parse_build(build(m), now) for m in (M.GCS_ONLY, M.LEGACY, M.CLOUD_LOGGING_ONLY, M.NONE)}
    assert {k: r["extra"]["log_object"] for k, r in rows.items()} == {
        "GCS_ONLY": "gs://logs-b/ci/log-ID.txt", "LEGACY": None, "CLOUD_LOGGING_ONLY": None, "NONE": None}
    assert {k: builds.READER.wants(r) for k, r in rows.items()} == {
        "GCS_ONLY": True, "LEGACY": True, "CLOUD_LOGGING_ONLY": True, "NONE": False}


def test_a_bucket_log_becomes_the_entries_a_logging_read_gives():
    found = bucketlog.entries("B", "BUILD\nStep #0: denied: nope\n")
    assert found == [{"textPayload": "BUILD", "resource": {"type": "build", "labels": {"build_id": "B"}}},
                     {"textPayload": "Step #0: denied: nope", "resource": {"type": "build", "labels": {"build_id": "B"}}}]
    assert builds.group_entries(found) == {"B": found}


def test_a_read_past_its_deadline_is_cut_and_keeps_what_it_reached():
    ticks = iter([0.0, 100.0])
    read = bucketlog.read_all(None, FakeEmitter(), [("A", "gs://b/log-A.txt")], deadline_at=0.5,
                              clock=lambda: next(ticks))
    assert (read.cut, read.calls, read.entries, read.unreached) == (bucketlog.logs.Cut.DEADLINE, 0, [], {"A"})


class Objects:
    """A storage client holding one object, answering `download_as_bytes(start=-N)` as GCS does."""

    def __init__(self, data: bytes) -> None:
        self.data, self.asked = data, []

    def bucket(self, name):
        return self

    def blob(self, name):
        return self

    def download_as_bytes(self, start, **_):
        self.asked.append(start)
        return self.data[start:]


def test_a_log_of_exactly_the_tail_size_keeps_its_first_line_and_a_longer_one_drops_its_cut_line():
    head, tail = b"FIRST LINE\n", b"root error\n"
    filler = (b"x" * 99 + b"\n") * ((bucketlog.TAIL_BYTES - len(head) - len(tail)) // 100)
    pad = bucketlog.TAIL_BYTES - len(head) - len(tail) - len(filler)
    whole = head + filler + b"y" * (pad - 1) + b"\n" + tail
    assert len(whole) == bucketlog.TAIL_BYTES
    text, _ = bucketlog.read_tail(Objects(whole), FakeEmitter(), "gs://b/log-A.txt", 3.0)
    assert text.splitlines()[0] == "FIRST LINE" and text.endswith("root error\n")
    longer = Objects(b"CUT LINE\n" + whole)
    text, _ = bucketlog.read_tail(longer, FakeEmitter(), "gs://b/log-A.txt", 3.0)
    assert text.splitlines()[0] != "FIRST LINE" and "CUT" not in text and len(text) < bucketlog.TAIL_BYTES
    assert longer.asked == [-(bucketlog.TAIL_BYTES + 1)]


def test_one_storage_client_serves_every_object_of_a_read(monkeypatch):
    from arrctl.sources import clients
    made = []
    monkeypatch.setattr(clients, "storage_client", lambda ctx: made.append(ctx) or Objects(b"ok\n"))
    ctx = FetchContext(config=Config(project="p", regions=[]), call_timeout_s=3.0)
    read = bucketlog.read_all(ctx, FakeEmitter(), [("A", "gs://b/log-A.txt"), ("B", "gs://b/log-B.txt")],
                              deadline_at=100.0, clock=lambda: 0.0)
    assert (len(made), read.calls, [e["resource"]["labels"]["build_id"] for e in read.entries]) == (1, 2, ["A", "B"])


# --- the fake, through google-cloud-storage ---------------------------------------------------------

def test_the_fake_serves_a_gcs_only_builds_log_from_its_bucket_and_not_from_cloud_logging(make_sandbox):
    sandbox = make_sandbox(t=30.0)
    text, problem = bucketlog.read_tail(storage(sandbox), FakeEmitter(), PUSH_OBJECT, 3.0)
    assert problem is None
    lines = text.splitlines()
    assert (lines[0], lines[-1]) == ("FETCHSOURCE", 'ERROR: build step 1 "gcr.io/cloud-builders/docker" '
                                                   "failed: step exited with non-zero status: 1")
    assert f'Step #1 - "push": {PUSH_DENIED}' in lines
    # a LEGACY build's log is in the project's default bucket too; an unknown object is not found
    legacy = bucketlog.uri("gs://123456789012.cloudbuild-logs.googleusercontent.com", PIP_BUILD)
    assert "Step #0 - \"build\": ERROR: " + PIP_ERROR in bucketlog.read_tail(storage(sandbox), FakeEmitter(), legacy, 3.0)[0]
    assert bucketlog.read_tail(storage(sandbox), FakeEmitter(), "gs://arr-demo-build-logs/nope.txt", 3.0) == (None, None)
    # Cloud Logging holds nothing of the GCS_ONLY build
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    from arrctl.sources import logs
    assert logs.read_entries(ctx_of(sandbox), FakeEmitter(), builds.log_filter("arr-demo", [PUSH_BUILD], since),
                             deadline_at=time.monotonic() + 9).entries == []


def test_the_fake_answers_a_range_with_the_last_bytes(make_sandbox):
    sandbox = make_sandbox(t=30.0)
    bucket, _, name = PUSH_OBJECT.removeprefix("gs://").partition("/")
    url = f"{sandbox.url}/download/storage/v1/b/{bucket}/o/{urllib.request.quote(name, safe='')}?alt=media"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=-20"}), timeout=5) as answer:
        body, content_range = answer.read(), answer.headers["Content-Range"]
        assert answer.status == 206
    with urllib.request.urlopen(url, timeout=5) as whole:
        full = whole.read()
    assert body == b" non-zero status: 1\n" == full[-20:]
    assert content_range == f"bytes {len(full) - 20}-{len(full) - 1}/{len(full)}"


# --- end to end: read once ever --------------------------------------------------------------------

def refresher(sandbox, tmp_path: Path, clock) -> Refresher:
    return Refresher(Config(project="arr-demo", regions=[], builds_recent=10), Store(tmp_path, clock=clock), Endpoints(gcp=sandbox.url),
                     grace_s=0.1, deadline_s=20.0, clock=clock)


def test_a_gcs_only_build_is_explained_from_its_bucket_once_ever(make_sandbox, tmp_path: Path):
    sandbox = make_sandbox(t=30.0)
    clock = FakeClock()
    first = refresher(sandbox, tmp_path, clock)
    results = first.refresh(["builds"])
    assert results["builds"].state == "ok", results["builds"].error
    failed = {r["id"]: (r["message"], r["category"]) for r in results["builds"].rows if r["status"] == "FAILED"}
    assert failed[PUSH_BUILD] == (PUSH_DENIED, "permission")
    assert failed[PIP_BUILD] == (PIP_ERROR, "dependency")  # the others still come from Cloud Logging
    push = next(r for r in results["builds"].rows if r["id"] == PUSH_BUILD)
    assert push["extra"]["log_object"] == PUSH_OBJECT and push["extra"]["logging"] == "GCS_ONLY"
    assert (requests_of(sandbox, "storage"), requests_of(sandbox, "logging")) == (1, 1)
    assert ("builds", PUSH_BUILD) in health.failure_keys(results)

    first.refresh(["builds"])  # steady state
    again = refresher(sandbox, tmp_path, clock).refresh(["builds"])  # another process, same state directory
    assert (requests_of(sandbox, "storage"), requests_of(sandbox, "logging")) == (1, 1)
    assert next(r for r in again["builds"].rows if r["id"] == PUSH_BUILD)["message"] == PUSH_DENIED


def test_a_denied_bucket_read_keeps_the_apis_words_and_is_tried_again(make_sandbox, tmp_path: Path):
    sandbox = make_sandbox(["storage:status:403"], t=30.0)
    clock = FakeClock()
    process = refresher(sandbox, tmp_path, clock)
    results = process.refresh(["builds"])
    assert results["builds"].error == (
        f"logs: build log {PUSH_OBJECT}: 403 Forbidden: 123456789012-compute@developer.gserviceaccount.com "
        "does not have storage.objects.get access to the Google Cloud Storage object. Permission 'storage.objects.get' denied on resource (or it may not exist).")
    push = next(r for r in results["builds"].rows if r["id"] == PUSH_BUILD)
    # the API's own words (its failureInfo), marked unread until the log says
    assert push["message"] == PUSH_DENIED and push["extra"]["logs_unread"] is True
    assert ("builds", PUSH_BUILD) not in health.failure_keys(results)  # paged once its root error is known
    pip = next(r for r in results["builds"].rows if r["id"] == PIP_BUILD)
    assert pip["message"] == PIP_ERROR  # what the Logging query explained is kept
    later = process.refresh(["builds"])  # within the backoff: no read
    assert requests_of(sandbox, "storage") == 1
    assert later["builds"].error.startswith("logs of 1 builds not read yet (build log ")
    timed_out = next(r for r in results["builds"].rows if r["id"] == "2b4d6f80-a1c3-4e5f-b7d9-0e2f4a6c8e62")
    assert "logs_unread" not in timed_out["extra"]  # its Logging read was whole: the API's words are its fact


def test_a_build_that_keeps_no_log_keeps_the_apis_words_without_a_read():
    row = make_row("builds", "N", "FAILED", raw_status="FAILURE", message=STEP_1_FAILED,
                   extra={"logging": "NONE", "log_object": None, "api_message": STEP_1_FAILED})
    assert not builds.READER.wants(row)


# --- explain and logs through the installed command ----------------------------------------------

def run_cli(tmp_path: Path, sandbox, *args: str):
    import os
    import subprocess
    import sys

    config = tmp_path / "config.toml"
    config.write_text('project = "arr-demo"\nregions = ["us-central1"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_"))}
    env["ARRCTL_GCP_ENDPOINT"] = sandbox.url
    arrctl = str(Path(sys.executable).with_name("arrctl"))
    return subprocess.run([arrctl, "--config", str(config), "--state-dir", str(tmp_path / "state"), *args],
                          capture_output=True, text=True, timeout=90, env=env)


def fixture_lines() -> list[str]:
    from arrctl.sandbox.scenario import SCENARIOS_DIR

    text = (SCENARIOS_DIR / "default" / "logs" / "build-b8a7c6d5.log").read_text()
    return [line for line in text.splitlines() if line.strip()]


def test_explain_and_logs_read_a_gcs_only_build_from_its_bucket(make_sandbox, tmp_path: Path):
    sandbox = make_sandbox(t=30.0)
    explained = run_cli(tmp_path, sandbox, "explain", "--json", PUSH_BUILD)
    assert explained.returncode == 0, explained.stderr
    found = json.loads(explained.stdout)
    assert (found["message"], found["category"]) == (PUSH_DENIED, "permission")
    printed = run_cli(tmp_path, sandbox, "logs", PUSH_BUILD)
    assert printed.stdout.splitlines() == fixture_lines()  # every line once, the repeated `ERROR` prefix too
    assert requests_of(sandbox, "logging") == 0 and requests_of(sandbox, "storage") == 2
