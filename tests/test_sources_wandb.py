"""Sources `active` and `completed`: parse_run on recorded nodes, fetch through the real wandb client."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import socket
import subprocess
import time
import traceback
import types
from typing import Any, Callable, Iterator

import pytest

from conftest import in_child
from fakes import FakeEmitter

from arrctl.config import Config
from arrctl.model import ROW_KEYS, make_row
from arrctl.sandbox import wandb as fake_wandb
from arrctl.sandbox.base import Request, Response
from arrctl.sandbox.faults import parse_faults
from arrctl.sandbox.clock import ManualClock
from arrctl.sandbox.server import SandboxServer
from arrctl.sources import FetchContext, SourceError
from arrctl.sources import active, completed
from arrctl.sources.wandb_client import MalformedRun, describe_error, sweep_private_dirs
from arrctl.sources.wandb_common import parse_run, root_error

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "arrctl" / "sandbox" / "scenarios" / "default"
KEY = "demo" + "0" * 36
ENTITY, PROJECT = "arr-demo", "arr-coc-0-1"
NOW = 1_795_000_000.0  # 2026-11-18T11:06:40Z
APP = "https://wandb.ai/arr-demo/arr-coc-0-1/runs"


# --- parse_run on nodes recorded from the W&B GraphQL API ------------------------------------

RUNNING_STALE = {
    "projectId": "418207", "id": "UnVuOnYxOnA2ejNrOW1oOmFyci1jb2MtMC0xOmFyci1kZW1v",
    "tags": ["launch", "l4"], "name": "p6z3k9mh", "displayName": "bright-ember-54",
    "sweepName": None, "state": "running",
    "config": '{"lr": {"value": 0.0004, "desc": null}}', "group": "coc-0-1", "jobType": "train",
    "createdAt": "2026-11-18T10:16:40", "heartbeatAt": "2026-11-18T10:41:40",
    "summaryMetrics": '{"_runtime": 1500, "_step": 610, "loss": 1.204}',
    "user": {"name": "ARR Demo", "username": "arr-demo"},
}
FAILED_TRACEBACK = {
    "name": "h0q4z7lx", "displayName": "vivid-brook-47", "state": "failed",
    "createdAt": "2026-11-17T15:06:40", "heartbeatAt": "2026-11-17T15:07:25",
    "summaryMetrics": json.dumps({"_runtime": 45, "exception": (
        "Traceback (most recent call last):\n  File \"/app/train.py\", line 88, in <module>\n"
        "    main(cfg)\nFileNotFoundError: [Errno 2] No such file or directory: 'gs://b/train.parquet'\n")}),
    "tags": [], "user": {"name": "ARR Demo", "username": "arr-demo"},
}


def test_running_run_with_a_stale_heartbeat():
    row = parse_run(RUNNING_STALE, NOW, source="active", entity=ENTITY, project=PROJECT)
    assert row == make_row(
        "active", "p6z3k9mh", "RUNNING", raw_status="running", name="bright-ember-54",
        created="2026-11-18T10:16:40Z", started="2026-11-18T10:16:40Z", finished=None,
        duration_s=3000.0, message=None, url=f"{APP}/p6z3k9mh",
        extra={"heartbeat_at": "2026-11-18T10:41:40Z", "heartbeat_age_s": 1500.0, "user": "arr-demo",
               "tags": ["launch", "l4"], "group": "coc-0-1", "job_type": "train", "step": 610,
               "entity": ENTITY, "project": PROJECT})
    assert tuple(row) == ROW_KEYS


def test_failed_run_message_is_the_tracebacks_last_line():
    row = parse_run(FAILED_TRACEBACK, NOW, source="completed", entity=ENTITY, project=PROJECT,
                    url="http://127.0.0.1:1234/arr-demo/arr-coc-0-1/runs/h0q4z7lx")
    assert row == make_row(
        "completed", "h0q4z7lx", "FAILED", raw_status="failed", name="vivid-brook-47",
        created="2026-11-17T15:06:40Z", started="2026-11-17T15:06:40Z",
        finished="2026-11-17T15:07:25Z", duration_s=45.0,
        message="FileNotFoundError: [Errno 2] No such file or directory: 'gs://b/train.parquet'",
        url="http://127.0.0.1:1234/arr-demo/arr-coc-0-1/runs/h0q4z7lx",
        extra={"heartbeat_at": "2026-11-17T15:07:25Z", "heartbeat_age_s": 71955.0, "user": "arr-demo",
               "tags": [], "group": None, "job_type": None, "step": None, "entity": ENTITY, "project": PROJECT,
               "api_message": "FileNotFoundError: [Errno 2] No such file or directory: 'gs://b/train.parquet'"})


@pytest.mark.parametrize("state, summary, status, message", [
    ("finished", {"_runtime": 600, "loss": 0.3}, "SUCCEEDED", None),
    ("crashed", {"_runtime": 600}, "FAILED", "run crashed: no heartbeat since 2026-11-18T08:10:00Z"),
    ("crashed", {"error": "NCCL error: unhandled system error\nmore"}, "FAILED", "NCCL error: unhandled system error"),
    ("failed", {}, "FAILED", "run failed (no error recorded in its summary)"),
    ("killed", {"error": "ignored for a cancelled run"}, "CANCELLED", None),
    ("preempted", {}, "CANCELLED", None),
    ("preempting", {}, "RUNNING", None),
    ("pending", {}, "PENDING", None),
    ("Finished", {}, "SUCCEEDED", None),
    ("frozen", {}, "UNKNOWN", None),
])
def test_status_mapping_and_messages(state, summary, status, message):
    node = {"name": "x1", "state": state, "createdAt": "2026-11-18T08:00:00",
            "heartbeatAt": "2026-11-18T08:10:00", "summaryMetrics": json.dumps(summary)}
    row = parse_run(node, NOW, source="completed", entity=ENTITY, project=PROJECT)
    assert (row["status"], row["raw_status"], row["message"]) == (status, state.lower(), message)


def test_times_by_state():
    base = {"name": "x1", "createdAt": "2026-11-18T08:00:00", "heartbeatAt": "2026-11-18T08:10:00"}
    ended = parse_run({**base, "state": "finished"}, NOW, source="completed", entity=ENTITY, project=PROJECT)
    assert (ended["started"], ended["finished"], ended["duration_s"]) == (
        "2026-11-18T08:00:00Z", "2026-11-18T08:10:00Z", 600.0)
    running = parse_run({**base, "state": "running"}, NOW, source="active", entity=ENTITY, project=PROJECT)
    assert (running["finished"], running["duration_s"]) == (None, 11200.0)
    pending = parse_run({**base, "state": "pending"}, NOW, source="active", entity=ENTITY, project=PROJECT)
    assert (pending["started"], pending["duration_s"]) == (None, None)
    # no heartbeat: the summary's _runtime dates the end
    no_beat = {"name": "x1", "state": "killed", "createdAt": "2026-11-18T08:00:00",
               "summaryMetrics": {"_runtime": 90.5}}
    row = parse_run(no_beat, NOW, source="completed", entity=ENTITY, project=PROJECT)
    assert (row["finished"], row["duration_s"], row["extra"]["heartbeat_age_s"]) == (
        "2026-11-18T08:01:30.500Z", 90.5, None)


def test_sparse_and_odd_nodes():
    row = parse_run({"name": "z9", "state": None, "summaryMetrics": "{not json", "tags": "x",
                     "user": None}, NOW, source="active", entity="e/1", project="p q")
    assert row["status"] == "UNKNOWN" and row["raw_status"] is None
    assert row["created"] is None and row["duration_s"] is None and row["name"] is None
    assert row["extra"]["tags"] == [] and row["extra"]["user"] is None
    assert row["url"] == "https://wandb.ai/e%2F1/p%20q/runs/z9"
    with pytest.raises(MalformedRun):
        parse_run({"state": "running"}, NOW, source="active", entity=ENTITY, project=PROJECT)


def test_message_is_one_clean_line():
    node = {"name": "x", "state": "failed",
            "summaryMetrics": {"error": "\x1b[31mRuntimeError: bad\x1b[0m header Bearer abc.def-ghi"}}
    row = parse_run(node, NOW, source="completed", entity=ENTITY, project=PROJECT)
    assert row["message"] == "RuntimeError: bad header Bearer [REDACTED]"
    assert root_error("\n\n  first\nsecond") == "first"


class FakeApiFailure(Exception):
    """Shaped like wandb-core's WandbApiFailedError: a message and a response with http_status."""

    def __init__(self, message: str, http_status: int = 0) -> None:
        super().__init__(message)
        self.response = types.SimpleNamespace(message=message, http_status=http_status)


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize("exc, expected", [
    (_chained(RuntimeError("Failed to verify credentials with https://api.wandb.ai: denied"),
              FakeApiFailure("denied", 403)), "W&B: authentication failed (403) at api.wandb.ai: check WANDB_API_KEY"),
    (FakeApiFailure("POST https://api.wandb.ai/graphql giving up after 2 attempt(s)\n"
                    "while retrying: HTTP 429: slow down"), "W&B: rate limited (429), gave up after retries"),
    (FakeApiFailure("giving up: HTTP 502: <html>bad gateway</html>"), "W&B: server error (502) from api.wandb.ai"),
    (FakeApiFailure("HTTP 418: teapot"), "W&B: HTTP 418 from api.wandb.ai"),
    (_chained(FakeApiFailure("the service process is busy and did not respond in time."), TimeoutError()),
     "W&B: no answer from api.wandb.ai within 7 s"),
    (FakeApiFailure('Post "https://api.wandb.ai/graphql": dial tcp: lookup api.wandb.ai: no such host'),
     "W&B: cannot connect to api.wandb.ai: unknown host"),
    (FakeApiFailure("invalid character '<' looking for beginning of value"), "W&B: malformed response (not JSON)"),
    (FakeApiFailure("input: project is archived\n"), "W&B: GraphQL error: project is archived"),
    (ValueError("Could not find project p"), "W&B: project e/p not found: check [wandb] entity and project"),
    (KeyError("edges"), "W&B: malformed response (KeyError: 'edges')"),
    (MalformedRun("a run without a name (its id)"), "W&B: malformed response: a run without a name (its id)"),
    (RuntimeError(f"odd failure for key {KEY}"), "W&B: RuntimeError: odd failure for key [REDACTED]"),
])
def test_describe_error(exc, expected):
    assert describe_error(exc, base_url="https://api:hidden@api.wandb.ai", timeout_s=7, secret=KEY,
                          path="e/p") == expected


def test_each_failure_has_its_kind_from_the_status_or_the_timeout():
    from arrctl.kinds import ErrorKind
    from arrctl.sources.wandb_client import error_kind

    denied = _chained(RuntimeError("Failed to verify credentials: denied"), FakeApiFailure("denied", 403))
    assert error_kind(denied) is ErrorKind.CREDENTIALS
    assert error_kind(_chained(FakeApiFailure("did not respond in time."), TimeoutError())) is ErrorKind.TIMEOUT
    assert error_kind(FakeApiFailure("giving up: HTTP 502: <html>bad gateway</html>", 502)) is ErrorKind.OTHER
    assert error_kind(RuntimeError("check WANDB_API_KEY, said nobody")) is ErrorKind.OTHER  # words decide nothing


# --- fetch end to end: the real wandb client against the sandbox core ------------------------

def run_fetch(fetch: Callable[..., None], ctx: FetchContext, timeout: float = 20.0) -> dict[str, Any]:
    """fetch(ctx, FakeEmitter()) in a forked child, as the supervisor runs it; what it reported.

    The child's temporary folder is a fresh one, so anything the fetch leaves there is seen.
    """
    import tempfile

    scratch = tempfile.mkdtemp(prefix="arrctl-test-scratch-")

    def child() -> dict[str, Any]:
        tempfile.tempdir = scratch
        emit, error = FakeEmitter(), None
        try:
            fetch(ctx, emit)
        except SourceError as exc:
            error = ("SourceError", str(exc))
        except BaseException:  # noqa: BLE001 — reported, the test fails on it
            error = ("error", traceback.format_exc())
        return {"batches": [(rows, part) for part, rows in emit.parts], "calls": emit.calls, "plans": emit.plans,
                "error": error,
                "facts": emit.facts_sent, "log_reports": emit.log_reports,
                "tmp_left": set(os.listdir(scratch)), "helpers_left": _wandb_core_children()}

    began = time.monotonic()
    try:
        result = in_child(child, timeout=timeout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["took_s"] = time.monotonic() - began
    if result["error"] and result["error"][0] != "SourceError":
        raise AssertionError(result["error"][1])
    return result


def _wandb_core_children() -> int:
    """How many live wandb-core processes this process started."""
    count = 0
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if name.startswith("wandb-core") and int(fields[1]) == os.getpid() and fields[0] != "Z":
            count += 1
    return count


class RecordingService:
    """The W&B service, with every request kept; `override` can replace an operation's answer."""

    name = "wandb"

    def __init__(self, inner: Any, override: Callable[[str], Response | None] | None = None) -> None:
        self.inner, self.override, self.log, self.bodies = inner, override, [], []
        self.downloads: list[tuple[str, str | None]] = []  # (path, Range header) of each file request

    def handle(self, request: Request) -> Response | None:
        if request.path != "/graphql":
            self.downloads.append((request.path, request.headers.get("range")))
            if self.override is not None and (answer := self.override(request.path)) is not None:
                return answer
            return self.inner.handle(request)
        query = json.loads(request.body or b"{}").get("query", "")
        self.log.append(query)
        self.bodies.append((request.body or b"{}").decode())
        if self.override is not None and (answer := self.override(query)) is not None:
            return answer
        return self.inner.handle(request)


@contextlib.contextmanager
def sandbox(tmp_path: pathlib.Path, faults: tuple[str, ...] = (),
            override: Callable[[str], Response | None] | None = None) -> Iterator[tuple[str, RecordingService]]:
    """The default W&B scenario behind the sandbox core at t=0; yields (url, recorder)."""
    clock = ManualClock(now=NOW)
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "scenario.json").write_text('{"description": "W&B only"}')
    recorder = RecordingService(fake_wandb.create(SCENARIO, clock), override)
    with SandboxServer(tmp_path, parse_faults(faults), clock=clock, services=[recorder]) as server:
        yield server.url, recorder


def context(url: str | None, call_timeout_s: float = 5.0, **config: Any) -> FetchContext:
    settings = {"wandb_entity": ENTITY, "wandb_project": PROJECT, "wandb_api_key": KEY, **config}
    return FetchContext(config=Config(**settings), call_timeout_s=call_timeout_s, wandb_base_url=url)


def test_active_lists_running_runs(tmp_path):
    with sandbox(tmp_path) as (url, recorder):
        result = run_fetch(active.fetch, context(url))
    assert result["error"] is None
    [(rows, part)] = result["batches"]
    assert part is None
    assert [(r["id"], r["status"], r["name"]) for r in rows] == [
        ("r8f2w6ny", "RUNNING", "quiet-harbor-55"), ("p6z3k9mh", "RUNNING", "bright-ember-54"),
        ("n4c1t7ek", "RUNNING", "wild-thunder-53")]
    stale = rows[1]
    assert stale["extra"]["heartbeat_at"] == "2026-11-18T10:41:40Z"
    assert stale["created"] == "2026-11-18T10:16:40Z"
    assert stale["url"] == f"{url}/arr-demo/arr-coc-0-1/runs/p6z3k9mh"
    assert {r["source"] for r in rows} == {"active"}
    assert result["calls"] == {"wandb": 2}  # Viewer (inside Api()) + one Runs page
    assert [fake_wandb._OPERATION.search(q).group(2) for q in recorder.log] == ["Viewer", "Runs"]
    assert result["tmp_left"] == set()
    assert result["helpers_left"] == 0  # wandb-core was torn down
    assert result["took_s"] < 5


NEWEST_TERMINAL = [
    ("m2x8v5jd", "SUCCEEDED", "finished"), ("s4d8f2gh", "FAILED", "crashed"),
    ("l9h6r3qc", "CANCELLED", "killed"), ("p2t6v9jx", "FAILED", "failed"),
    ("k7n2b4wf", "SUCCEEDED", "finished"), ("j1e5u8ot", "FAILED", "crashed"),
    ("i6w3s9ga", "SUCCEEDED", "finished"), ("h0q4z7lx", "FAILED", "failed"),
    ("g5y8c1vd", "SUCCEEDED", "finished"), ("f3r6j2nb", "FAILED", "crashed"),
]
FAILED_IDS = frozenset({"s4d8f2gh", "p2t6v9jx", "j1e5u8ot", "h0q4z7lx", "f3r6j2nb"})
WANDB_WORDS = {  # what W&B itself says of the failed runs (the summary, the state)
    "s4d8f2gh": "run crashed: no heartbeat since 2026-11-18T10:38:20Z",
    "p2t6v9jx": "run failed (no error recorded in its summary)",
    "j1e5u8ot": "NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error, NCCL version 2.21.5",
    "h0q4z7lx": "FileNotFoundError: [Errno 2] No such file or directory: 'gs://arr-demo-data/coc/train-00000.parquet'",
    "f3r6j2nb": "run crashed: no heartbeat since 2026-11-17T07:51:50Z",
}
FROM_CONSOLE = {  # what their console logs say (f3r6j2nb has none: it keeps W&B's words)
    "p2t6v9jx": ("memory.cuda_oom", 31, "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB. "
                 "GPU 0 has a total capacty of 22.03 GiB of which 1.12 GiB is free. Of the allocated memory 19.87 GiB "
                 "is allocated by PyTorch, and 612.45 MiB is reserved by PyTorch but unallocated. If reserved but "
                 "unallocated memory is large try setting max_split_size_mb to avoid fragmentation.  See documentation "
                 "for Memory Management and\u2026"),  # the same words as its Vertex job's replica log
    "j1e5u8ot": ("intro.nccl_last_error", 23, "socketStartConnect: Connect to 10.128.0.42<41877> failed : Software caused "
                 "connection abort"),
    "h0q4z7lx": ("resource.not_found", 14, WANDB_WORDS["h0q4z7lx"]),
    "f3r6j2nb": (None, None, WANDB_WORDS["f3r6j2nb"]),
    "s4d8f2gh": (None, None, WANDB_WORDS["s4d8f2gh"]),  # crashed while its Vertex job runs: no console log
}


def test_completed_takes_the_newest_terminal_runs(tmp_path):
    with sandbox(tmp_path) as (url, recorder):  # their console logs remembered: nothing more is read
        result = run_fetch(completed.fetch, dataclasses.replace(context(url), known_terminal=FAILED_IDS))
    [(rows, _part)] = result["batches"]
    assert [(r["id"], r["status"], r["raw_status"]) for r in rows] == NEWEST_TERMINAL
    assert {r["id"]: r["message"] for r in rows if r["status"] == "FAILED"} == WANDB_WORDS
    assert {r["id"]: r["extra"]["api_message"] for r in rows if r["status"] == "FAILED"} == WANDB_WORDS
    assert rows[0]["duration_s"] == 6480.0 and rows[0]["finished"] == "2026-11-18T10:54:40Z"
    assert result["calls"] == {"wandb": 2}
    assert recorder.downloads == [] and (result["facts"], result["log_reports"]) == ([], [])


def test_newly_failed_runs_get_the_root_error_of_their_console_logs_tail(tmp_path):
    with sandbox(tmp_path) as (url, recorder):
        result = run_fetch(completed.fetch, context(url))
    assert result["error"] is None
    (first, _), (rows, _) = result["batches"]  # the rows before the reads (should they be cut), then after
    assert [r["id"] for r in first] == [r["id"] for r in rows] == [i for i, _s, _r in NEWEST_TERMINAL]
    assert {r["id"] for r in first if r["extra"].get("logs_unread")} == FAILED_IDS
    failed = {r["id"]: r for r in rows if r["status"] == "FAILED"}
    assert {i: r["message"] for i, r in failed.items()} == {i: m for i, (_r, _l, m) in FROM_CONSOLE.items()}
    assert {i: r["extra"]["api_message"] for i, r in failed.items()} == WANDB_WORDS  # W&B's words kept
    assert not any(r["extra"].get("logs_unread") for r in rows)
    assert {f["id"]: (f["rule"], f["line"], f["message"]) for f in result["facts"]} == FROM_CONSOLE
    assert {(f["source"], f["status"], f["verdict"]) for f in result["facts"]} == {("completed", "FAILED", "failed")}
    assert result["log_reports"] == [{"read": ["s4d8f2gh", "p2t6v9jx", "j1e5u8ot", "h0q4z7lx", "f3r6j2nb"], "cut": {}}]
    operations = [fake_wandb._OPERATION.search(q).group(2) for q in recorder.log]
    assert operations == ["Viewer", "Runs", "RunFiles", "RunFiles", "RunFiles", "RunFiles", "RunFiles"]
    # one Range request per console log, straight to the signed storage URL (no W&B redirect)
    assert sorted(recorder.downloads) == [
        (f"/wandb-production.appspot.com/arr-demo/arr-coc-0-1/{i}/output.log", "bytes=-131072")
        for i in ("h0q4z7lx", "j1e5u8ot", "p2t6v9jx")]
    assert result["calls"] == {"wandb": 7, "storage": 3}


def test_a_cut_console_log_read_keeps_w_and_bs_words_and_is_retried(tmp_path):
    refuse = lambda path: Response(503, b"Service Unavailable", "text/plain") if "appspot" in path else None  # noqa: E731
    with sandbox(tmp_path, override=refuse) as (url, _recorder):
        result = run_fetch(completed.fetch, context(url))
    assert result["error"] == ("SourceError", f"console logs of 3 runs not read: output.log: HTTP 503 from "
                               f"{url.removeprefix('http://')}")
    (_, _), (rows, _) = result["batches"]
    failed = {r["id"]: r for r in rows if r["status"] == "FAILED"}
    assert {i: r["message"] for i, r in failed.items()} == WANDB_WORDS
    assert {i for i, r in failed.items() if r["extra"].get("logs_unread")} == {"p2t6v9jx", "j1e5u8ot", "h0q4z7lx"}
    assert [f["id"] for f in result["facts"]] == ["s4d8f2gh", "f3r6j2nb"]  # they have no console log: concluded
    [report] = result["log_reports"]
    assert report["read"] == ["s4d8f2gh", "f3r6j2nb"]
    assert sorted(report["cut"]) == ["h0q4z7lx", "j1e5u8ot", "p2t6v9jx"]


def test_runs_whose_read_waits_for_its_backoff_are_not_read(tmp_path):
    waiting = {"p2t6v9jx": (1, 25.0, "output.log: HTTP 503"), "j1e5u8ot": (1, 40.0, "output.log: HTTP 503")}
    ctx = dataclasses.replace(context(url=None), known_terminal=frozenset({"s4d8f2gh", "h0q4z7lx", "f3r6j2nb"}),
                              log_retry=waiting)
    with sandbox(tmp_path) as (url, recorder):
        result = run_fetch(completed.fetch, dataclasses.replace(ctx, wandb_base_url=url))
    assert result["error"] == ("SourceError", "console logs of 2 runs wait for a retry in 25s")
    assert recorder.downloads == [] and result["facts"] == [] and result["calls"] == {"wandb": 2}


def test_completed_orders_by_the_last_heartbeat_so_a_long_run_that_just_failed_is_first(tmp_path):
    # a run started 55 h ago that failed 100 s ago: by creation it is the oldest of all
    scenario = json.loads((SCENARIO / "wandb.json").read_text())
    scenario["runs"].append({"id": "z9longrn", "name": "long-haul-99", "state": "failed", "created": -200000,
                             "runtime": 199900, "summary": {"error": "RuntimeError: NaN loss at step 412000"}})
    (tmp_path / "wandb.json").write_text(json.dumps(scenario))
    (tmp_path / "scenario.json").write_text('{"description": "W&B only"}')
    clock = ManualClock(now=NOW)
    recorder = RecordingService(fake_wandb.create(tmp_path, clock))
    with SandboxServer(tmp_path, (), clock=clock, services=[recorder]) as server:
        result = run_fetch(completed.fetch, context(server.url, wandb_completed_limit=3))
    rows = result["batches"][-1][0]
    assert [r["id"] for r in rows] == ["z9longrn", "m2x8v5jd", "s4d8f2gh"]
    assert rows[0]["message"] == "RuntimeError: NaN loss at step 412000"
    runs_query = next(json.loads(e)["variables"] for e in recorder.bodies if "query Runs" in e)
    assert runs_query["order"] == "-heartbeat_at"


def test_the_host_of_wandb_login_is_honoured_and_named_in_auth_errors(tmp_path, monkeypatch):
    # `wandb login --host URL` writes [default] base_url to $WANDB_CONFIG_DIR/settings
    # (wandb/sdk/wandb_login.py _update_system_settings; wandb/sdk/lib/settings_file.py)
    config_dir = tmp_path / "wandb-config"
    config_dir.mkdir()
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # should anything try the default host
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with sandbox(tmp_path / "ok") as (url, recorder):
        (config_dir / "settings").write_text(f"[default]\nbase_url = {url}\n")
        result = run_fetch(active.fetch, context(None))
    assert result["error"] is None and len(result["batches"][0][0]) == 3
    assert [fake_wandb._OPERATION.search(q).group(2) for q in recorder.log] == ["Viewer", "Runs"]
    with sandbox(tmp_path / "denied", ("wandb:status:401",)) as (url, _recorder):
        (config_dir / "settings").write_text(f"[default]\nbase_url = {url}\n")
        denied = run_fetch(active.fetch, context(None))
    host = url.split("//")[1]
    assert denied["error"] == ("SourceError", f"W&B: authentication failed (401) at {host}: check WANDB_API_KEY")


def test_wandb_base_url_beats_the_settings_file(tmp_path):
    from arrctl.sources.wandb_client import chosen_base_url, settings_base_url, user_settings_file

    (tmp_path / "settings").write_text("[default]\nbase_url = https://wandb.example.internal\nmode = online\n")
    env = {"WANDB_CONFIG_DIR": str(tmp_path)}
    assert user_settings_file(env) == tmp_path / "settings"
    assert user_settings_file({"HOME": "/home/u"}) == pathlib.Path("/home/u/.config/wandb/settings")
    assert settings_base_url(env) == "https://wandb.example.internal"
    ctx = FetchContext(config=Config())
    assert chosen_base_url(ctx, env) == "https://wandb.example.internal"
    assert chosen_base_url(ctx, {**env, "WANDB_BASE_URL": "http://127.0.0.1:1"}) == "http://127.0.0.1:1"
    (tmp_path / "settings").write_text("not an ini file [")
    assert settings_base_url(env) is None


def test_completed_limit_and_pages_fault(tmp_path):
    with sandbox(tmp_path, ("wandb:pages:3",)) as (url, recorder):
        result = run_fetch(completed.fetch, dataclasses.replace(  # console logs remembered: only the list
            context(url, wandb_completed_limit=12), known_terminal=FAILED_IDS | {"d2k9f6rs"}))
    [(rows, _part)] = result["batches"]
    assert [r["id"] for r in rows][-3:] == ["f3r6j2nb", "e8p1m5hu", "d2k9f6rs"] and len(rows) == 12
    assert result["calls"] == {"wandb": 4}  # Viewer + 3 pages of at most ceil(15 / 3) = 5
    assert sum("query Runs" in q for q in recorder.log) == 3


@pytest.mark.parametrize("fault, expected", [
    ("wandb:status:403", "W&B: authentication failed (403) at {host}: check WANDB_API_KEY"),
    ("wandb:status:401", "W&B: authentication failed (401) at {host}: check WANDB_API_KEY"),
    ("wandb:malformed", "W&B: malformed response (not JSON)"),
    ("wandb:status:503", "W&B: server error (503) from {host}"),
    ("wandb:status:404", "W&B: not found (404) at {host}: check WANDB_BASE_URL"),
])
def test_faults_become_one_line_errors(tmp_path, fault, expected):
    with sandbox(tmp_path, (fault,)) as (url, _recorder):
        result = run_fetch(active.fetch, context(url))
    assert result["error"] == ("SourceError", expected.format(host=url.split("//")[1]))
    assert result["batches"] == [] and result["tmp_left"] == set()
    assert result["took_s"] < 5  # at most one retry, waiting at most 1 s


def test_a_hung_server_ends_at_the_call_timeout(tmp_path):
    with sandbox(tmp_path, ("wandb:hang",)) as (url, _recorder):
        result = run_fetch(active.fetch, context(url, call_timeout_s=1))
    assert result["error"] == ("SourceError", f"W&B: no answer from {url.split('//')[1]} within 1 s")
    assert result["took_s"] < 5


def test_latency_is_waited_out_and_trickle_is_cut_at_the_call_timeout(tmp_path):
    with sandbox(tmp_path, ("wandb:latency:0.3",)) as (url, _recorder):
        slow = run_fetch(active.fetch, context(url))
    assert slow["error"] is None and len(slow["batches"][0][0]) == 3
    assert slow["took_s"] >= 0.6  # two requests, each 0.3 s late
    with sandbox(tmp_path, ("wandb:trickle:0.02",)) as (url, _recorder):
        trickled = run_fetch(active.fetch, context(url, call_timeout_s=1))
    # the whole answer must arrive within the timeout: a trickled body cannot keep it alive
    assert trickled["error"] == ("SourceError", f"W&B: no answer from {url.split('//')[1]} within 1 s")
    assert trickled["took_s"] < 5


def test_errors_of_the_runs_query(tmp_path):
    def graphql_error(query: str) -> Response | None:
        return Response(200, {"data": None, "errors": [{"message": "runs index unavailable"}]}) \
            if "query Runs" in query else None

    with sandbox(tmp_path, override=graphql_error) as (url, _recorder):
        failed = run_fetch(completed.fetch, context(url))
    assert failed["error"] == ("SourceError", "W&B: GraphQL error: runs index unavailable")
    with sandbox(tmp_path) as (url, _recorder):
        missing = run_fetch(completed.fetch, context(url, wandb_entity="someone"))
    assert missing["error"] == (
        "SourceError", "W&B: project someone/arr-coc-0-1 not found: check [wandb] entity and project")


def test_connection_refused(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_fetch(active.fetch, context(f"http://127.0.0.1:{port}"))
    assert result["error"] == ("SourceError", f"W&B: cannot connect to 127.0.0.1:{port}: connection refused")
    assert result["took_s"] < 5


def test_dirs_of_dead_workers_are_swept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"arrctl-wandb-{dead.pid}-abc").mkdir()
    (tmp_path / f"arrctl-wandb-{dead.pid}-abc" / "core-debug.log").write_text("x")
    (tmp_path / f"arrctl-wandb-{os.getpid()}-def").mkdir()
    (tmp_path / "arrctl-wandb-notapid-x").mkdir()
    sweep_private_dirs(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"arrctl-wandb-{os.getpid()}-def", "arrctl-wandb-notapid-x"]


def test_configuration_errors_need_no_network():
    missing = run_fetch(active.fetch, context("http://127.0.0.1:9", wandb_project=None))
    assert missing["error"] == ("SourceError", "W&B entity/project not configured: set [wandb] entity "
                                               "and project, or WANDB_ENTITY/WANDB_PROJECT")
    no_key = run_fetch(completed.fetch, context("http://127.0.0.1:9", wandb_api_key=None))
    assert no_key["error"] == ("SourceError", "W&B API key not set: export WANDB_API_KEY (or use --demo)")
    assert missing["calls"] == no_key["calls"] == {}


# --- through the sandbox process and the supervisor's real workers --------------------------

@pytest.fixture
def wandb_scenario(tmp_path: pathlib.Path) -> str:
    """A scenario directory holding only the default W&B fixture (the Google services stay empty)."""
    folder = tmp_path / "wandb-only"
    folder.mkdir()
    (folder / "scenario.json").write_text('{"description": "the default W&B runs, nothing else"}')
    (folder / "wandb.json").write_text((SCENARIO / "wandb.json").read_text())
    shutil.copytree(SCENARIO / "logs", folder / "logs")  # the runs' console logs
    return str(folder)


def supervise(sandbox_url: str, sources: dict[str, Any], deadline_s: float = 10.0) -> dict[str, Any]:
    """One refresh of the named W&B sources by the supervisor, as `arrctl get` does it."""
    from arrctl.supervisor import Supervisor, WorkerSpec

    specs = [WorkerSpec(name, context(sandbox_url), deadline_s) for name in sources]
    return Supervisor(grace_s=0.1).run(specs)


def test_sandbox_process_with_wandb_403(wandb_scenario):
    from arrctl.sandbox import Sandbox

    with Sandbox(wandb_scenario, faults=["wandb:status:403"], read_env=False) as box:
        results = supervise(box.wandb_base_url, {"active": None, "completed": None})
    for name in ("active", "completed"):
        assert (results[name].state, results[name].error, results[name].rows) == (
            "error", f"W&B: authentication failed (403) at {box.wandb_base_url.split('//')[1]}: check WANDB_API_KEY",
            [])


def test_sandbox_process_serves_both_sources(wandb_scenario):
    from arrctl.sandbox import Sandbox

    with Sandbox(wandb_scenario, read_env=False) as box:
        results = supervise(box.wandb_base_url, {"active": None, "completed": None})
    assert results["active"].state == "ok" and results["completed"].state == "ok"
    assert {r["id"] for r in results["active"].rows} >= {"p6z3k9mh", "r8f2w6ny"}
    assert len(results["completed"].rows) == 10
    assert results["active"].calls == {"wandb": 2}


def test_sandbox_hang_is_a_timeout_at_the_deadline(wandb_scenario):
    from arrctl.sandbox import Sandbox

    began = time.monotonic()
    with Sandbox(wandb_scenario, faults=["wandb:hang"], read_env=False) as box:
        results = supervise(box.wandb_base_url, {"active": None}, deadline_s=1.5)
    assert time.monotonic() - began < 5
    assert (results["active"].state, results["active"].error) == ("timeout", "no answer within 1.5s")
