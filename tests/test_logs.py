"""Cloud Logging reads (sources/logs.py): bounded, following unfinished searches, rate-aware,
retried with backoff shared through the state store — through the real client against the fake."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from arrctl import health
from arrctl.config import Config
from arrctl.refresh import Endpoints, Refresher
from arrctl.sandbox.base import rfc3339
from arrctl.sandbox.server import SandboxServer
from arrctl.sources import FetchContext, launcher, logs, runner
from arrctl.store import Store

from test_sources_gcp import FakeEmitter
from conftest import log_requests

REGIONS = ["us-central1", "europe-west2", "asia-northeast1"]  # where the default scenario's executions are
pytestmark = pytest.mark.timeout(120)


class FakeClock:
    """Wall time that moves only when told to (shared by the Refresher and the Store)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def context(server: SandboxServer, **extra) -> FetchContext:
    config = Config(project="arr-demo", regions=list(REGIONS))
    return FetchContext(config=config, gcp_endpoint=server.url, call_timeout_s=3.0, deadline_s=10.0, extra=extra)


def by_execution(name: str, since_s_ago: float) -> str:
    return runner.log_filter("vertex-ai-launcher", [name], rfc3339(time.time() - since_s_ago))


# --- pure -------------------------------------------------------------------------------------

def test_every_filter_is_bounded_below():
    assert logs.bounded("x", "2026-01-01T00:00:00Z") == 'x AND timestamp>="2026-01-01T00:00:00Z"'
    assert logs.is_bounded('a AND timestamp>="2026-01-01T00:00:00Z"')
    assert not logs.is_bounded('a AND timestamp<="2026-01-01T00:00:00Z"')
    with pytest.raises(ValueError):
        logs.bounded("x", "")


def test_backoff_grows_and_is_capped():
    assert [logs.retry_delay_s(n) for n in (1, 2, 3, 4, 5, 9)] == [30, 60, 120, 240, 480, 600]
    assert [logs.hold_s(n) for n in (1, 2, 3, 4, 5)] == [60, 120, 240, 480, 600]


# --- one read, through the real client ----------------------------------------------------------

def test_an_empty_page_with_a_token_is_followed(make_sandbox):
    sandbox = make_sandbox()
    emit = FakeEmitter()
    # c9x3d ran 26 h ago: the newest day searched first holds nothing of it
    read = logs.read_entries(context(sandbox), emit, by_execution("vertex-ai-launcher-c9x3d", 93700),
                             deadline_at=time.monotonic() + 10)
    assert read.complete and read.calls == 2 and len(read.entries) > 20
    assert emit.calls == {"logging": 2}


def test_a_read_stops_at_its_deadline_and_says_it_was_cut(make_sandbox):
    sandbox = make_sandbox()
    read = logs.read_entries(context(sandbox), FakeEmitter(), by_execution("vertex-ai-launcher-c9x3d", 93700),
                             deadline_at=time.monotonic() + 0.5)
    assert (read.cut, read.calls, read.entries) == (logs.Cut.DEADLINE, 1, [])
    assert not read.complete and "deadline" in read.reason


def test_an_unbounded_filter_is_refused_before_any_call(make_sandbox):
    sandbox = make_sandbox()
    with pytest.raises(ValueError, match="timestamp>="):
        logs.read_entries(context(sandbox), FakeEmitter(), 'labels."run.googleapis.com/execution_name"="x"',
                          deadline_at=time.monotonic() + 10)
    assert log_requests(sandbox) == 0


def test_a_429_is_a_rate_limited_cut_named_from_its_details(make_sandbox):
    sandbox = make_sandbox(["logging:status:429"])
    read = logs.read_entries(context(sandbox), FakeEmitter(), by_execution("vertex-ai-launcher-t2v6b", 86400),
                             deadline_at=time.monotonic() + 10)
    assert read.cut is logs.Cut.RATE_LIMITED
    assert read.reason == "429 rate limited: ReadRequestsPerMinutePerProject (60) of logging.googleapis.com"


def test_explain_bounds_its_read_by_the_executions_creation(make_sandbox):
    sandbox = make_sandbox()
    emit = FakeEmitter()
    launcher.explain_execution(context(sandbox, execution="vertex-ai-launcher-c9x3d"), emit)
    analysis = emit.results_sent[0]
    assert (analysis["verdict"], analysis["jobs"], analysis["found"]) == ("succeeded", 5, True)
    # found in Cloud Run, then its logs from its creation on: 2 requests (26 h = two days searched),
    # not the 30 an unbounded filter costs
    assert emit.calls["logging"] == 2 and log_requests(sandbox) == 2


def test_explain_with_logging_rate_limited_says_so_and_gives_cloud_runs_words(make_sandbox):
    sandbox = make_sandbox(["logging:status:429"])
    emit = FakeEmitter()
    launcher.explain_execution(context(sandbox, execution="vertex-ai-launcher-t2v6b"), emit)
    analysis = emit.results_sent[0]
    assert analysis["note"].startswith("logs of vertex-ai-launcher-t2v6b not fully read: 429 rate limited")
    assert analysis["verdict"] == "failed"
    assert analysis["message"] == ("Task vertex-ai-launcher-t2v6b-task0 failed with message: "
                                   "The container exited with an error. (Cloud Run's words)")
    # one try, no second within its deadline: the quota is per minute
    assert log_requests(sandbox) == 1 and emit.log_reports == [{"called": True, "rate_limited": True}]


# --- the runner source: retries shared by every process on one state directory ----------------

def test_a_watch_and_a_check_share_the_backoff_and_conclude_with_cloud_runs_words(make_sandbox, tmp_path: Path):
    sandbox = make_sandbox(["logging:status:429"])
    clock = FakeClock()
    config = Config(project="arr-demo", regions=list(REGIONS))

    def refresher() -> Refresher:  # a process of its own: its own store connection
        return Refresher(config, Store(tmp_path, clock=clock), Endpoints(gcp=sandbox.url), grace_s=0.1,
                         deadline_s=10.0, clock=clock)

    watch, check = refresher(), refresher()
    errors, calls = [], []
    for step in range(logs.MAX_TRIES):
        for process in (watch, check):
            result = process.refresh(["runner"])["runner"]
            errors.append(result.error)
            calls.append(log_requests(sandbox))
        clock.advance(logs.HOLD_MAX_S + 1)  # past any hold and any backoff
    assert calls == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]  # never both: the 429 holds the other one too
    assert errors[0] == "logs: 429 rate limited: ReadRequestsPerMinutePerProject (60) of logging.googleapis.com"
    assert errors[1].startswith("logs: Cloud Logging reads held 60s more after a 429")
    # the fifth cut read concluded them with what Cloud Run itself says, so check reports it
    last = watch.refresh(["runner"])
    assert log_requests(sandbox) == 5
    rows = {r["id"]: r for r in last["runner"].rows}
    assert rows["vertex-ai-launcher-t2v6b"]["message"] == (
        "Task vertex-ai-launcher-t2v6b-task0 failed with message: The container exited with an error.")
    assert ("runner", "vertex-ai-launcher-t2v6b") in health.failure_keys(last)
    assert last["runner"].state == "ok"


def test_a_cut_read_waits_for_its_backoff(make_sandbox, tmp_path: Path):
    sandbox = make_sandbox(["logging:status:503"])
    clock = FakeClock()
    config = Config(project="arr-demo", regions=list(REGIONS))
    process = Refresher(config, Store(tmp_path, clock=clock), Endpoints(gcp=sandbox.url), grace_s=0.1,
                        deadline_s=10.0, clock=clock)
    first = process.refresh(["runner"])["runner"]
    assert first.error.startswith("logs: 503 Service Unavailable")
    second = process.refresh(["runner"])["runner"]  # within the 30 s backoff: no read
    assert log_requests(sandbox) == 1
    assert second.error == ("logs of 3 executions not read yet (503 Service Unavailable: The service is currently "
                            "unavailable. (sandbox fault logging:status:503)); next try in 30s")
    clock.advance(31)
    process.refresh(["runner"])
    assert log_requests(sandbox) == 2
