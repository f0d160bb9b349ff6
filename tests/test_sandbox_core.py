"""The sandbox core: fault specs, each fault over raw HTTP, stats, scenarios, the process."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from arrctl.sandbox import (
    DEMO_PROJECT, DEMO_REGIONS, DEMO_WANDB_API_KEY, Sandbox, SandboxError,
    demo_config_toml,
)
from arrctl.sandbox.base import (
    PageTokenError, Request, Response, epoch_at, paginate, rfc3339,
)
from arrctl.sandbox.faults import Fault, FaultTable, faults_from_env, parse_fault, split_env
from arrctl.sandbox.clock import ManualClock, ScenarioClock
from arrctl.sandbox.scenario import Timeline, available, read_meta, resolve, resolve_dir, scenario_dir
from arrctl.sandbox.server import SandboxServer, classify, error_response, load_services, serve
from conftest import alive, wait_until

NOW = 1_750_000_000.0
EMPTY_BUILDS = "/v1/projects/arr-demo/locations/us-east1/builds"  # answers {} (2 bytes)
MISSING_BUILD = "/v1/projects/arr-demo/builds/no-such-build"  # a 404 owned by `build`


class FakeWandb:
    """Stands in for the W&B service (written in parallel) so its fault shape is tested here."""

    name = "wandb"

    def handle(self, request: Request) -> Response | None:
        if request.path == "/graphql":
            return Response(200, {"data": {"viewer": {"id": "1"}}})
        return None


@pytest.fixture
def start() -> Iterator[Any]:
    """Start in-process servers on a pinned clock; all stopped at the end."""
    servers: list[SandboxServer] = []

    def _start(*faults: str, scenario: str = "default", t: float = 0.0,
               wandb: bool = False) -> SandboxServer:
        clock = ManualClock(now=NOW, t=t)
        directory = scenario_dir(scenario)
        services = load_services(directory, clock, warn=io.StringIO())
        services = [s for s in services if s.name != "wandb"] + ([FakeWandb()] if wandb else [])
        server = SandboxServer(directory, [parse_fault(f) for f in faults], clock=clock,
                               services=services).start()
        servers.append(server)
        return server

    yield _start
    for server in servers:
        server.stop()


def get(server: SandboxServer, path: str, timeout: float = 5.0,
        method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    """One request on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "application/json"} if body else {})
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


# --- fault specs -----------------------------------------------------------------------------

@pytest.mark.parametrize("spec, fault", [
    ("run:latency:1.5", Fault("run", "latency", 1.5)),
    ("vertex:hang", Fault("vertex", "hang")),
    ("build:status:503", Fault("build", "status", 503)),
    ("logging:malformed", Fault("logging", "malformed")),
    ("wandb:trickle", Fault("wandb", "trickle", 0.05)),
    ("wandb:trickle:0.25", Fault("wandb", "trickle", 0.25)),
    ("logging:pages:3", Fault("logging", "pages", 3)),
    (" run:latency:0 ", Fault("run", "latency", 0.0)),
])
def test_good_fault_specs(spec: str, fault: Fault) -> None:
    assert parse_fault(spec) == fault
    assert parse_fault(fault.spec()) == fault


KINDS = ("KIND must be one of latency:SECONDS, hang, status:CODE, malformed, "
         "trickle[:SECONDS_PER_BYTE], pages:N")
SERVICE = "expected SERVICE:KIND[:ARG] with SERVICE one of run, vertex, build, logging, wandb, storage"


@pytest.mark.parametrize("spec, reason", [
    ("run", SERVICE),
    ("gcs:hang", SERVICE),
    ("run:explode", KINDS),
    ("run:latency", "latency needs SECONDS, a number >= 0"),
    ("run:latency:-1", "latency needs SECONDS, a number >= 0"),
    ("run:latency:soon", "latency needs SECONDS, a number >= 0"),
    ("run:latency:nan", "latency needs SECONDS, a number >= 0"),
    ("run:trickle:x", "trickle needs SECONDS_PER_BYTE, a number >= 0"),
    ("run:hang:5", "hang takes no argument"),
    ("run:malformed:1", "malformed takes no argument"),
    ("build:status:abc", "status needs CODE, an HTTP error status 400-599"),
    ("build:status:200", "status needs CODE, an HTTP error status 400-599"),
    ("build:status", "status needs CODE, an HTTP error status 400-599"),
    ("logging:pages:0", "pages needs N, an integer >= 1"),
    ("logging:pages:2.5", "pages needs N, an integer >= 1"),
    ("run:latency:1:2", "latency takes at most one argument"),
])
def test_bad_fault_specs_name_the_spec_and_what_was_expected(spec: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_fault(spec)
    assert str(caught.value) == f"bad fault spec {spec!r}: {reason}"
    assert "\n" not in str(caught.value)


def test_env_faults_are_comma_separated_and_blank_items_skipped() -> None:
    assert split_env(" run:hang, ,build:status:503,") == ["run:hang", "build:status:503"]
    assert faults_from_env({"ARRCTL_SANDBOX_FAULTS": "wandb:hang"}) == ["wandb:hang"]
    assert faults_from_env({}) == []


def test_fault_table_later_fault_of_a_kind_wins() -> None:
    table = FaultTable([Fault("run", "latency", 1.0), Fault("run", "latency", 2.0),
                        Fault("run", "hang")])
    assert table.get("run", "latency") == Fault("run", "latency", 2.0)
    assert table.get("build", "latency") is None
    assert table.get(None, "hang") is None
    assert sorted(table.specs()) == ["run:hang", "run:latency:2"]


# --- routing, stats, one send ----------------------------------------------------------------

@pytest.mark.parametrize("path, service", [
    ("/v2/projects/p/locations/us-central1/jobs/j/executions", "run"),
    ("/v2/projects/p/locations/us-central1/jobs/j:run", "run"),
    ("/v2/projects/p/locations/us-central1/operations/abc", "run"),
    ("/v1/projects/p/locations/us-central1/customJobs", "vertex"),
    ("/v1/projects/p/builds", "build"),
    ("/v1/projects/p/locations/us-central1/builds", "build"),
    ("/v2/entries:list", "logging"),
    ("/graphql", "wandb"),
    ("/v1/projects/p/topics", None),
])
def test_classify_paths(path: str, service: str | None) -> None:
    assert classify(path, has_wandb=True) == service


def test_without_wandb_other_paths_belong_to_no_service() -> None:
    assert classify("/graphql", has_wandb=False) is None


def test_stats_count_requests_per_service(start: Any) -> None:
    server = start()
    get(server, EMPTY_BUILDS)
    get(server, EMPTY_BUILDS)
    get(server, "/v2/projects/arr-demo/locations/us-east1/jobs/vertex-ai-launcher/executions")
    get(server, "/v2/entries:list", method="POST", body=b'{"resourceNames": ["projects/p"]}')
    get(server, "/download/storage/v1/b/some-bucket/o/log-x.txt?alt=media")
    status, body = get(server, "/nowhere")
    assert status == 404
    assert json.loads(body)["error"]["status"] == "NOT_FOUND"
    status, body = get(server, "/_sandbox/stats")
    stats = json.loads(body)
    assert status == 200
    assert stats["requests"] == {"run": 1, "vertex": 0, "build": 2, "logging": 1, "wandb": 0,
                                 "storage": 1, "other": 1}
    assert stats["scenario"] == "default"
    assert stats["t"] == 0.0


def test_unknown_route_of_a_service_is_a_google_404(start: Any) -> None:
    server = start()
    status, body = get(server, "/v2/projects/arr-demo/locations/us-central1/jobs/other/executions")
    assert status == 404
    assert json.loads(body) == {"error": {
        "code": 404, "status": "NOT_FOUND",
        "message": ("Resource 'other' of kind 'JOB' in region 'us-central1' in project "
                    "'arr-demo' does not exist.")}}


def test_keep_alive_answers_are_one_send_each(start: Any) -> None:
    # Two sends per answer cost ~40 ms of delayed ACK each: 25 requests would take ~1 s.
    server = start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    began = time.monotonic()
    for _ in range(25):
        conn.request("GET", EMPTY_BUILDS)
        answer = conn.getresponse()
        assert answer.read() == b"{}"
        assert answer.getheader("Content-Length") == "2"
    took = time.monotonic() - began
    conn.close()
    assert took < 0.5, f"25 keep-alive requests took {took:.3f} s"


def test_served_config_is_the_demo_config(start: Any) -> None:
    status, body = get(start(), "/_sandbox/config")
    assert status == 200
    assert body.decode() == demo_config_toml()


def test_demo_config_parses_to_the_demo_constants() -> None:
    assert tomllib.loads(demo_config_toml()) == {
        "project": "arr-demo", "regions": list(DEMO_REGIONS),
        "runner": {"job": "vertex-ai-launcher"},
        "wandb": {"entity": "arr-demo", "project": "arr-coc-0-1"},
    }
    assert len(DEMO_REGIONS) == 18 and DEMO_REGIONS[0] == "us-central1"
    assert len(DEMO_WANDB_API_KEY) == 40


# --- each fault kind over raw HTTP -----------------------------------------------------------

def test_latency_delays_only_its_service(start: Any) -> None:
    server = start("build:latency:0.3")
    began = time.monotonic()
    assert get(server, EMPTY_BUILDS) == (200, b"{}")
    assert time.monotonic() - began >= 0.3
    began = time.monotonic()
    status, _ = get(server, "/v1/projects/arr-demo/locations/us-east1/customJobs")
    assert status == 200
    assert time.monotonic() - began < 0.2


def test_hang_never_answers_and_stop_releases_it(start: Any) -> None:
    server = start("build:hang")
    began = time.monotonic()
    with pytest.raises((socket.timeout, TimeoutError)):
        get(server, EMPTY_BUILDS, timeout=0.3)
    assert 0.3 <= time.monotonic() - began < 1.0
    # the hung connection is open, not refused; another service still answers
    assert get(server, "/v1/projects/arr-demo/locations/us-east1/customJobs")[0] == 200
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < 1.0


def test_status_fault_is_a_google_error_body(start: Any) -> None:
    server = start("run:status:403", "logging:status:429")
    status, body = get(server, "/v2/projects/arr-demo/locations/us-east1/jobs/vertex-ai-launcher/"
                               "executions")
    assert status == 403
    resource = "projects/arr-demo/locations/us-east1/jobs/vertex-ai-launcher"
    assert json.loads(body) == {"error": {  # the real denial: the permission the route needs, on what
        "code": 403, "status": "PERMISSION_DENIED",
        "message": f"Permission 'run.executions.list' denied on resource '//run.googleapis.com/{resource}' "
                   "(or it may not exist).",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                     "domain": "run.googleapis.com",
                     "metadata": {"permission": "run.executions.list", "resource": resource}}]}}
    status, body = get(server, "/v2/entries:list", method="POST", body=b"{}")
    assert (status, json.loads(body)["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")


def test_status_fault_on_run_does_not_start_an_execution(start: Any) -> None:
    server = start("run:status:503")
    status, _ = get(server, "/v2/projects/arr-demo/locations/us-central1/jobs/vertex-ai-launcher"
                            ":run", method="POST", body=b"{}")
    assert status == 503
    run = next(s for s in server.services if s.name == "run")
    assert run.world.launches == {}  # type: ignore[attr-defined]


def test_status_fault_on_wandb_has_the_graphql_error_shape(start: Any) -> None:
    server = start("wandb:status:500", wandb=True)
    status, body = get(server, "/graphql", method="POST", body=b"{}")
    assert status == 500
    assert json.loads(body) == {"errors": [{"message": "sandbox fault wandb:status:500"}]}
    assert error_response("wandb", 401).status == 401


def test_malformed_is_a_200_with_truncated_json(start: Any) -> None:
    server = start("vertex:malformed", "build:malformed")
    status, body = get(server, "/v1/projects/arr-demo/locations/us-central1/customJobs")
    assert status == 200
    assert body.startswith(b'{"customJobs":[{')
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)
    status, body = get(server, EMPTY_BUILDS)  # {} becomes {
    assert (status, body) == (200, b"{")


def test_trickle_sends_the_real_body_a_byte_at_a_time(start: Any) -> None:
    server = start("build:trickle:0.01")
    plain = start()
    _, expected = get(plain, MISSING_BUILD)
    began = time.monotonic()
    status, body = get(server, MISSING_BUILD)
    took = time.monotonic() - began
    assert (status, body) == (404, expected)
    assert took >= len(expected) * 0.01


def test_pages_fault_splits_a_list_over_n_pages(start: Any) -> None:
    server = start("build:pages:3")
    ids, token, requests = [], "", 0
    while True:
        status, body = get(server, f"/v1/projects/arr-demo/builds?pageToken={token}")
        requests += 1
        page = json.loads(body)
        ids += [b["id"] for b in page["builds"]]
        token = page.get("nextPageToken", "")
        if not token:
            break
    assert requests == 3
    assert len(ids) == len(set(ids)) == 7  # the builds that exist at t=0


def test_bad_page_token_is_invalid_argument(start: Any) -> None:
    status, body = get(start(), "/v1/projects/arr-demo/builds?pageToken=%%%")
    assert status == 400
    assert json.loads(body)["error"]["status"] == "INVALID_ARGUMENT"


def test_paginate_pages_and_tokens() -> None:
    items = list(range(10))
    first, token = paginate(items, 4, None)
    second, token2 = paginate(items, 4, token)
    third, token3 = paginate(items, 4, token2)
    assert (first, second, third, token3) == ([0, 1, 2, 3], [4, 5, 6, 7], [8, 9], None)
    assert paginate(items, 100, None, pages=4)[0] == [0, 1, 2]
    assert paginate([], 5, None, pages=3) == ([], None)
    with pytest.raises(PageTokenError):
        paginate(items, 4, "bm9wZQ==")


def test_rfc3339_is_utc_with_microseconds() -> None:
    assert rfc3339(NOW + 0.25) == "2025-06-15T15:06:40.250000Z"


# --- scenarios -------------------------------------------------------------------------------

def test_scenarios_and_their_base_chain() -> None:
    assert available() == ["default", "hostile", "launch-crowded", "launch-exec-fails", "launch-fatal-log",
                           "launch-idle", "launch-stuck", "launch-vertex-fails", "real-apis"]
    stuck = scenario_dir("launch-stuck")
    meta = read_meta(stuck)
    assert meta["speed"] == 1.0  # inherited from default
    assert meta["launch"]["execution"]["log"] == "logs/launch-stuck.log"  # its own
    assert "vertex" not in meta["launch"]
    assert resolve(stuck, "run.json") == scenario_dir("default").resolve() / "run.json"
    assert resolve(stuck, "logs/launch-stuck.log") == stuck.resolve() / "logs/launch-stuck.log"
    assert resolve_dir(stuck, "wandb.json") == scenario_dir("default").resolve()
    with pytest.raises(ValueError, match=r"unknown sandbox scenario 'nope' \(known: default, "):
        scenario_dir("nope")


def test_timeline_states_over_time() -> None:
    line = Timeline.parse([[5, "RUNNING"], [-3, "QUEUED"], [9, "SUCCEEDED"]])
    assert [line.state(t) for t in (-4, -3, 0, 5, 8.9, 9, 100)] == [
        None, "QUEUED", "QUEUED", "RUNNING", "RUNNING", "SUCCEEDED", "SUCCEEDED"]
    assert (line.created, line.changed(7), line.first({"SUCCEEDED"}, 8)) == (-3, 5, None)


def test_manual_clock_scales_wall_time_by_speed() -> None:
    clock = ManualClock(now=NOW, t=0.0, speed=2.0)
    clock.advance(10)
    assert (clock.t(), clock.now()) == (10.0, NOW + 5)


def test_scenario_clock_runs_at_the_scenario_speed() -> None:
    clock = ScenarioClock(speed=1000.0)
    assert wait_until(lambda: clock.t() >= 20.0, timeout=1.0)
    # scenario offsets map to wall time through the speed: 1000 scenario s = 1 real s
    assert abs(epoch_at(clock, clock.t() - 1000.0) - (clock.now() - 1.0)) < 0.01


# --- the process -----------------------------------------------------------------------------

def test_sandbox_process_starts_fast_serves_and_is_gone_after_stop() -> None:
    sandbox = Sandbox(read_env=False).start()
    try:
        pid = sandbox.pid
        assert pid is not None and alive(pid)
        assert sandbox.started_in_s is not None and sandbox.started_in_s < 3.0
        assert sandbox.gcp_endpoint == f"http://127.0.0.1:{sandbox.port}"
        assert sandbox.env() == {
            "ARRCTL_GCP_ENDPOINT": sandbox.gcp_endpoint, "WANDB_BASE_URL": sandbox.gcp_endpoint,
            "WANDB_API_KEY": DEMO_WANDB_API_KEY, "GOOGLE_CLOUD_PROJECT": DEMO_PROJECT,
            "WANDB_ENTITY": "arr-demo", "WANDB_PROJECT": "arr-coc-0-1"}
        with urllib.request.urlopen(sandbox.gcp_endpoint + EMPTY_BUILDS, timeout=5) as answer:
            assert answer.read() == b"{}"
        assert sandbox.stats()["requests"]["build"] == 1
    finally:
        sandbox.stop()
    assert not alive(pid)
    sandbox.stop()  # idempotent


def test_sandbox_context_manager_and_faults_reach_the_child() -> None:
    environ = {"ARRCTL_SANDBOX_FAULTS": "build:status:503"}
    with Sandbox(faults=["run:latency:0.01"], environ=environ) as sandbox:
        pid = sandbox.pid
        assert sandbox.stats()["faults"] == ["build:status:503", "run:latency:0.01"]  # env first
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(sandbox.gcp_endpoint + EMPTY_BUILDS, timeout=5)
        assert caught.value.code == 503
    assert pid is not None and not alive(pid)


def test_sandbox_rejects_bad_faults_and_scenarios_before_starting() -> None:
    with pytest.raises(ValueError, match="bad fault spec 'run:nope'"):
        Sandbox(faults=["run:nope"])
    with pytest.raises(ValueError, match="bad fault spec 'x'"):
        Sandbox(environ={"ARRCTL_SANDBOX_FAULTS": "x"})
    sandbox = Sandbox(scenario="no-such-scenario", read_env=False)
    with pytest.raises(ValueError, match="unknown sandbox scenario"):
        sandbox.start()
    assert sandbox.process is None


def test_sandbox_start_failure_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = Sandbox(read_env=False, start_timeout=2.0)
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(SandboxError, match="exited with status 1 at start"):
        sandbox.start()
    assert sandbox.process is None


def test_sandbox_ignores_sigint() -> None:
    with Sandbox(read_env=False) as sandbox:
        assert sandbox.pid is not None
        os.kill(sandbox.pid, signal.SIGINT)
        time.sleep(0.05)  # give a default SIGINT handler the time it would need to kill it
        assert sandbox.stats()["requests"]["run"] == 0
        assert alive(sandbox.pid)


def test_sandbox_dies_with_its_parent_even_on_kill_9(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys, time
        from arrctl.sandbox import Sandbox
        sandbox = Sandbox(read_env=False).start()
        print(sandbox.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not alive(child), timeout=2.0)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_child_whose_parent_is_already_gone_exits_at_once() -> None:
    out = subprocess.run([sys.executable, "-m", "arrctl.sandbox", "child", "--parent-pid", "1"],
                         capture_output=True, text=True, timeout=20,
                         cwd=Path(__file__).resolve().parents[1])
    assert (out.returncode, out.stdout) == (0, "")


def test_parent_must_not_import_cloud_libraries_to_start_a_sandbox() -> None:
    script = textwrap.dedent("""
        import sys
        before = set(sys.modules)  # a .pth file pre-creates the empty `google` namespace
        from arrctl.sandbox import Sandbox
        with Sandbox(read_env=False) as sandbox:
            pass
        heavy = [m for m in set(sys.modules) - before
                 if m.startswith(("google", "wandb", "grpc", "arrctl.sandbox.server"))]
        print(heavy)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=20, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]", out.stderr


# --- serve -----------------------------------------------------------------------------------

def test_serve_prints_exports_and_config_and_stops_on_request() -> None:
    stdout, stop, result = io.StringIO(), threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(
        serve(0, "default", ["build:status:503"], stdout, environ={}, stop=stop)))
    thread.start()
    assert wait_until(lambda: "export WANDB_PROJECT" in stdout.getvalue(), timeout=5)
    lines = stdout.getvalue().splitlines()
    url = lines[2].removeprefix("export ARRCTL_GCP_ENDPOINT=")
    assert lines[0] == (f"# arrctl sandbox: scenario default, listening on {url} "
                        "(Ctrl-C to stop)")
    assert lines[1] == "# faults: build:status:503"
    assert lines[2:8] == [
        f"export ARRCTL_GCP_ENDPOINT={url}", f"export WANDB_BASE_URL={url}",
        f"export WANDB_API_KEY={DEMO_WANDB_API_KEY}", "export GOOGLE_CLOUD_PROJECT=arr-demo",
        "export WANDB_ENTITY=arr-demo", "export WANDB_PROJECT=arr-coc-0-1"]
    config = "\n".join(line[2:] if line.startswith("# ") else "" for line in lines[9:])
    assert tomllib.loads(config) == tomllib.loads(demo_config_toml())
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url + EMPTY_BUILDS, timeout=5)
    assert caught.value.code == 503
    stop.set()
    thread.join(timeout=5)
    assert result == [0]


def test_serve_rejects_a_bad_env_fault() -> None:
    with pytest.raises(ValueError, match="bad fault spec 'run:boom'"):
        serve(0, "default", [], io.StringIO(), environ={"ARRCTL_SANDBOX_FAULTS": "run:boom"})


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_serve_process_stops_cleanly_on_signals(signum: int, code: int) -> None:
    process = subprocess.Popen([sys.executable, "-m", "arrctl.sandbox", "serve"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[1])
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("# arrctl sandbox: scenario default, listening on http://")
        process.send_signal(signum)
        assert process.wait(timeout=3) == code
        assert process.stderr is not None and process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_cli_bad_fault_exits_2() -> None:
    out = subprocess.run([sys.executable, "-m", "arrctl.sandbox", "serve", "--fault", "x:y"],
                         capture_output=True, text=True, timeout=20,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "arrctl sandbox: bad fault spec 'x:y': expected SERVICE:KIND[:ARG] with SERVICE one of "
        "run, vertex, build, logging, wandb, storage")
