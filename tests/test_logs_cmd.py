"""`arrctl logs ID|URL [-f]`: what an ID names, the lines printed once each, following a runner
execution to its end through the real clients against the fake cloud (whose clock the test moves)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from arrctl.ids import Kind, Target, parse_target
from arrctl.logs_cmd import Follower, LogBook, Palette, conclude, parse_duration, render
from arrctl.model import SourceResult
from arrctl.sandbox.clock import ManualClock
from arrctl.sandbox.scenario import SCENARIOS_DIR, LogSpec
from arrctl.sandbox.server import SandboxServer

from conftest import alive, descendants, wait_until

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(120)
R1N7V = (SCENARIOS_DIR / "default" / "logs" / "vertex-ai-launcher-r1n7v.log").read_text().splitlines()
R1N7V = [line for line in R1N7V if line.strip()]
ROOT_ERROR = ('InvalidArgument: 400 Accelerator "NVIDIA_TESLA_A100" is not supported for machine type '
              '"g2-standard-4". (category invalid_config)')


# --- what an ID names (pure; explain.parse_target, shared with explain) -----------------------

def test_a_runner_rows_console_url_names_its_execution() -> None:
    url = ("https://console.cloud.google.com/run/jobs/executions/details/us-central1/vertex-ai-launcher-x7k2p/"
           "tasks?project=p")
    assert parse_target(url) == Target((Kind.EXECUTION,), "vertex-ai-launcher-x7k2p", region="us-central1",
                                       project="p")


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("2h", 7200), ("3d", 259200),
                                           ("1h30m", 5400), ("45", 45)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2w", "h", "-5m", "0s", "1h 30m", "nan", "inf", "500d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# --- the lines (pure) -------------------------------------------------------------------------

def entry(key: str, ts: str, *lines: str, replica: str | None = None, task: str | None = None) -> dict[str, Any]:
    labels = {"run.googleapis.com/task_index": task} if task is not None else {}
    return {"insertId": key, "timestamp": ts, "severity": None, "labels": labels, "replica": replica,
            "lines": list(lines)}


def test_the_log_book_keeps_each_entry_once_in_time_order_and_reads_on_from_a_little_before() -> None:
    book = LogBook()
    first = book.add([entry("b", "2026-01-01T00:00:02Z", "two"), entry("a", "2026-01-01T00:00:01Z", "one")])
    assert [e["insertId"] for e in first] == ["a", "b"]
    again = book.add([entry("b", "2026-01-01T00:00:02Z", "two"), entry("c", "2026-01-01T00:00:03Z", "three")])
    assert [e["insertId"] for e in again] == ["c"]
    assert book.cursor(lag_s=30) == "2025-12-31T23:59:33Z"
    assert LogBook().cursor() is None


def test_vertex_lines_carry_their_replica_and_runner_lines_their_task_only_when_there_are_several() -> None:
    entries = [entry("1", "2026-01-01T00:00:01Z", "loss=1.0", "step 1", replica="workerpool0-0"),
               entry("2", "2026-01-01T00:00:02Z", "loss=0.9", replica="workerpool1-0")]
    assert render(Kind.VERTEX_JOB, entries, Palette(False)) == [
        "[workerpool0-0] loss=1.0", "[workerpool0-0] step 1", "[workerpool1-0] loss=0.9"]
    painted = render(Kind.VERTEX_JOB, entries, Palette(True))
    assert painted[0] == "\x1b[36m[workerpool0-0] \x1b[0mloss=1.0" and painted[2].startswith("\x1b[32m")
    runner = [entry("1", "2026-01-01T00:00:01Z", "hello", task="1")]
    assert render(Kind.EXECUTION, runner, Palette(False)) == ["hello"]
    assert render(Kind.EXECUTION, runner, Palette(False), many_tasks=True) == ["[task-1] hello"]


def test_lines_are_sanitised_escapes_stripped_and_secrets_masked() -> None:
    hostile = entry("1", "2026-01-01T00:00:01Z", "\x1b[2J\x1b]0;pwned\x07ok", "WANDB_API_KEY=0123456789abcdef0123")
    assert render(Kind.EXECUTION, [hostile], Palette(False)) == ["ok", "WANDB_API_KEY=[REDACTED]"]


def test_a_failed_execution_concludes_with_the_root_error_of_its_logs() -> None:
    row = {"source": "runner", "status": "FAILED", "message": None, "category": None, "raw_status": "NON_ZERO_EXIT_CODE",
           "finished": "2026-01-01T00:01:00Z",
           "id": "vertex-ai-launcher-r1n7v", "extra": {"condition": "Task failed"}}
    entries = [entry(str(n), f"2026-01-01T00:00:{n:02d}Z", line) for n, line in enumerate(R1N7V)]
    ending = conclude(Kind.EXECUTION, "vertex-ai-launcher-r1n7v", row, entries)
    assert (ending.code, ending.line) == (1, f"vertex-ai-launcher-r1n7v FAILED: {ROOT_ERROR}")
    done = conclude(Kind.EXECUTION, "x-1", {**row, "status": "SUCCEEDED", "id": "x-1"},
                    [entry("1", "2026-01-01T00:00:01Z", "Runs: 2")])
    assert done.code == 0 and done.line.startswith("x-1 SUCCEEDED: Completed")


class FakeOutput:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)


def result(*facts: dict[str, Any], state: str = "ok", error: str | None = None) -> SourceResult:
    return SourceResult(source="logs", state=state, error=error, results=list(facts))


def test_the_follower_tails_the_first_batch_reads_on_and_ends_one_read_after_the_item() -> None:
    out, warnings = FakeOutput(), []
    follower = Follower(Target((Kind.EXECUTION,), "x-1"), out, warnings.append, follow=True, tail=1, color=False)
    extra: dict[str, Any] = {"since": None}
    running = {"status": "RUNNING", "region": "us-central1", "extra": {"task_count": 1}}
    first = [entry("a", "2026-01-01T00:00:01Z", "one"), entry("b", "2026-01-01T00:00:02Z", "two")]
    assert not follower.on_result(extra, result({"found": True, "row": running, "entries": first}))
    assert out.lines == ["two"] and extra["since"] == "2025-12-31T23:59:32Z" and extra["region"] == "us-central1"
    ended = {**running, "status": "FAILED"}
    later = [entry("b", "2026-01-01T00:00:02Z", "two"), entry("c", "2026-01-01T00:00:03Z", "three")]
    assert not follower.on_result(extra, result({"found": True, "row": ended, "entries": later}))
    assert follower.on_result(extra, result({"found": True, "row": ended, "entries": []}))
    assert out.lines == ["two", "three"] and follower.done and not follower.failed
    # a failed poll while following is said once, and following goes on
    assert not follower.on_result(extra, result(state="timeout", error="no answer within 5s")) is True
    assert warnings == ["x-1: no answer within 5s (still following)"]


def test_the_follower_says_when_the_item_does_not_exist_or_cannot_be_read() -> None:
    gone = Follower(Target((Kind.EXECUTION,), "x-1"), FakeOutput(), print, follow=True, tail=None, color=False,
                    not_found="execution x-1 not found: ...")
    assert gone.on_result({}, result({"found": False}))
    assert gone.failed == "execution x-1 not found: ..."
    cut = Follower(Target((Kind.EXECUTION,), "x-1"), FakeOutput(), print, follow=False, tail=None, color=False)
    row = {"status": "FAILED", "region": "r", "extra": {}}
    assert cut.on_result({}, result({"found": True, "row": row, "entries": [], "cut": "503 Service Unavailable",
                                     "cut_kind": "error"}))
    assert cut.failed == "logs of x-1 not fully read: 503 Service Unavailable"


# --- end to end: the real clients against the fake, its clock moved by the test -----------------

EXECUTION = "vertex-ai-launcher-f0l1w"
SPAN = (-3.0, 27.0)  # the log's lines arrive evenly over this span; the execution fails at 30


def visible(t: float) -> list[str]:
    """The lines of the log that exist at scenario time t (as the fake spreads them)."""
    return [text for offset, _i, text in LogSpec(R1N7V, *SPAN).timed() if offset <= t]


def make_cloud(tmp_path: Path, now: float) -> tuple[Any, ManualClock, Path]:
    """A fake cloud with one running execution of the r1n7v log, its clock in the test's hands."""
    scenario = tmp_path / "scenario"
    (scenario / "logs").mkdir(parents=True)
    (scenario / "logs" / "f0l1w.log").write_text("\n".join(R1N7V) + "\n")
    (scenario / "scenario.json").write_text(json.dumps(
        {"description": "one execution whose log arrives over time", "speed": 1.0,
         "logging": {"reads_per_minute": 10_000}}))
    (scenario / "run.json").write_text(json.dumps({"job": "vertex-ai-launcher", "executions": [
        {"id": EXECUTION, "region": "europe-west2", "timeline": [[-5, "PENDING"], [-4, "RUNNING"], [30, "FAILED"]],
         "log": "logs/f0l1w.log", "log_span": list(SPAN), "message": "Task failed"}]}))
    config = tmp_path / "config.toml"
    config.write_text('project = "arr-demo"\nregions = ["us-central1", "europe-west2"]\n')
    clock = ManualClock(now=now)
    return SandboxServer(scenario, clock=clock).start(), clock, config


@pytest.fixture
def cloud(tmp_path: Path) -> Any:
    server, clock, config = make_cloud(tmp_path, time.time())
    yield server, clock, config
    server.stop()


def follow(tmp_path: Path, server: Any, config: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_"))}
    env["ARRCTL_GCP_ENDPOINT"] = server.url
    return subprocess.Popen([ARRCTL, "--config", str(config), "--state-dir", str(tmp_path / "state"), "logs",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


class Lines:
    """The lines a process writes, collected as they come."""

    def __init__(self, stream: Any) -> None:
        self.got: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for text in stream:
            self._queue.put(text.rstrip("\n"))

    def until(self, count: int, timeout: float = 30.0) -> list[str]:
        wait_until(lambda: self._drain() >= count, timeout=timeout)
        return self.got

    def _drain(self) -> int:
        while not self._queue.empty():
            self.got.append(self._queue.get())
        return len(self.got)


def test_logs_prints_every_line_of_an_execution(tmp_path: Path, cloud: Any) -> None:
    server, clock, config = cloud
    clock.set(40)  # long over: every line is there, and Cloud Run's own exit line
    done = follow(tmp_path, server, config, EXECUTION)
    out, err = done.communicate(timeout=60)
    assert (done.returncode, err) == (0, "")
    assert out.splitlines() == R1N7V + ["Container called exit(1)."]
    tail = follow(tmp_path, server, config, "--tail", "2", EXECUTION)
    assert tail.communicate(timeout=60)[0].splitlines() == [R1N7V[-1], "Container called exit(1)."]


def test_follow_prints_lines_as_they_arrive_until_the_execution_fails(tmp_path: Path, cloud: Any) -> None:
    server, clock, config = cloud
    proc = follow(tmp_path, server, config, "-f", "--poll", "0.3", EXECUTION)
    lines = Lines(proc.stdout)
    try:
        for t in (0.0, 10.0, 20.0):
            clock.set(t)
            assert lines.until(len(visible(t))) == visible(t)  # what exists now, and nothing twice
            assert proc.poll() is None  # still following
        clock.set(31.0)  # the last lines, then the execution fails
        assert proc.wait(timeout=60) == 1
        assert lines.until(len(R1N7V) + 1) == R1N7V + ["Container called exit(1)."]
        assert proc.stderr.read() == f"arrctl: {EXECUTION} FAILED: {ROOT_ERROR}\n"
    finally:
        proc.kill()


def test_ctrl_c_ends_a_follow_at_once_with_130_and_no_worker_left(tmp_path: Path, cloud: Any) -> None:
    server, clock, config = cloud
    proc = follow(tmp_path, server, config, "-f", "--poll", "0.3", EXECUTION)
    lines = Lines(proc.stdout)
    try:
        assert lines.until(len(visible(0.0))) == visible(0.0)
        assert wait_until(lambda: bool(descendants(proc.pid)), timeout=10)  # a poll's worker is reading
        workers = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        assert proc.stderr.read() == ""
        assert wait_until(lambda: not any(alive(pid) for pid in workers), timeout=5)
    finally:
        proc.kill()


def test_a_closed_pipe_ends_a_follow_quietly(tmp_path: Path, cloud: Any) -> None:
    server, clock, config = cloud
    proc = follow(tmp_path, server, config, "-f", "--poll", "0.3", EXECUTION)
    try:
        assert proc.stdout.readline()  # the first line: `| head -1` has what it wanted
        proc.stdout.close()
        clock.set(31.0)  # more lines to write, into a closed pipe
        assert proc.wait(timeout=60) == 0
        assert proc.stderr.read() == ""
    finally:
        proc.kill()


def test_an_execution_that_does_not_exist_is_one_line_and_exit_1(tmp_path: Path, cloud: Any) -> None:
    server, _clock, config = cloud
    done = follow(tmp_path, server, config, "vertex-ai-launcher-nosuch")
    out, err = done.communicate(timeout=60)
    assert (done.returncode, out) == (1, "")
    assert err == ("arrctl: error: execution vertex-ai-launcher-nosuch not found: job vertex-ai-launcher of project "
                   "arr-demo has no such execution in us-central1, europe-west2\n")
    bad = follow(tmp_path, server, config, "--since", "2w", EXECUTION)
    assert bad.communicate(timeout=60)[1].splitlines()[-1].endswith(
        "Invalid value for '--since': '2w' is not a duration: expected e.g. 90s, 15m, 2h, 3d or 1h30m")
    assert bad.returncode == 2


def test_since_keeps_only_the_recent_lines(tmp_path: Path) -> None:
    server, clock, config = make_cloud(tmp_path, time.time() - 3600)  # the execution ran an hour ago
    try:
        clock.set(40)
        recent = follow(tmp_path, server, config, "--since", "30m", EXECUTION)
        assert recent.communicate(timeout=60) == ("", "") and recent.returncode == 0
        older = follow(tmp_path, server, config, "--since", "2h", EXECUTION)
        assert older.communicate(timeout=60)[0].splitlines() == R1N7V + ["Container called exit(1)."]
    finally:
        server.stop()


# --- every kind through --demo: the lines of the fixtures the fake serves ---------------------------

DEMO_LOGS = SCENARIOS_DIR / "default" / "logs"
VERTEX_JOB = "1428571428571428013"
BUILD = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61"


def fixture_lines(name: str) -> list[str]:
    return [line for line in (DEMO_LOGS / name).read_text().splitlines() if line.strip()]


def demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    return subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path / "state"), "logs", *args],
                          capture_output=True, text=True, timeout=90, env=env)


def test_a_vertex_jobs_lines_come_from_every_replica_each_prefixed(tmp_path: Path) -> None:
    done = demo(tmp_path, "-f", VERTEX_JOB)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    for replica in ("workerpool0-0", "workerpool1-0"):
        mine = [line.removeprefix(f"[{replica}] ") for line in lines if line.startswith(f"[{replica}] ")]
        assert mine == fixture_lines(f"vertex-{VERTEX_JOB}-{replica}.log")
    assert len(lines) == len(fixture_lines(f"vertex-{VERTEX_JOB}-workerpool0-0.log")) + \
        len(fixture_lines(f"vertex-{VERTEX_JOB}-workerpool1-0.log"))
    assert done.stderr.startswith(f"arrctl: {VERTEX_JOB} FAILED: workerpool0-0: torch.cuda.OutOfMemoryError: CUDA out of memory.")
    assert done.stderr.endswith("(category oom)\n")


def test_a_builds_lines_and_its_root_error(tmp_path: Path) -> None:
    done = demo(tmp_path, "-f", BUILD)
    assert done.returncode == 1
    assert done.stdout.splitlines() == fixture_lines("build-9c8b7a6d.log")
    assert done.stderr == (f"arrctl: {BUILD} FAILED: No matching distribution found for arr-coc-kernels==0.4.2 "
                           "(category dependency)\n")


def test_a_wandb_runs_console_log_by_path_or_bare_id(tmp_path: Path) -> None:
    done = demo(tmp_path, "-f", "arr-demo/arr-coc-0-1/p2t6v9jx")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [line for line in (DEMO_LOGS / "wandb-p2t6v9jx-output.log").read_text()
                                        .splitlines()]
    assert done.stderr.startswith("arrctl: p2t6v9jx FAILED: torch.cuda.OutOfMemoryError: CUDA out of memory.")
    bare = demo(tmp_path, "--tail", "2", "p2t6v9jx")  # an execution name too: looked up as one first
    assert (bare.returncode, bare.stdout.splitlines()) == (0, done.stdout.splitlines()[-2:])


def test_follow_a_running_wandb_run_reads_its_console_log_on_by_offset_until_it_crashes(tmp_path: Path) -> None:
    from arrctl.sandbox import DEMO_WANDB_API_KEY

    clock = ManualClock(now=time.time())
    server = SandboxServer("default", clock=clock).start()
    config = tmp_path / "config.toml"
    config.write_text('project = "arr-demo"\nregions = ["us-central1"]\n[wandb]\nentity = "arr-demo"\n'
                      'project = "arr-coc-0-1"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_"))}
    env.update(ARRCTL_GCP_ENDPOINT=server.url, WANDB_BASE_URL=server.url, WANDB_API_KEY=DEMO_WANDB_API_KEY)
    proc = subprocess.Popen([ARRCTL, "--config", str(config), "--state-dir", str(tmp_path / "state"), "logs", "-f",
                             "--poll", "0.3", "arr-demo/arr-coc-0-1/r8f2w6ny"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        asked = server.counters.snapshot()["wandb"]
        assert wait_until(lambda: server.counters.snapshot()["wandb"] >= asked + 6, timeout=60)  # polls go on
        assert proc.poll() is None  # running, and no console log yet (W&B uploads it at the end)
        clock.set(20.0)  # it crashed at 14: its output.log is there
        assert proc.wait(timeout=60) == 1
        expected = (DEMO_LOGS / "wandb-r8f2w6ny-output.log").read_text().splitlines()
        assert proc.stdout.read().splitlines() == expected  # each line once, however many reads there were
        assert proc.stderr.read() == (
            "arrctl: r8f2w6ny FAILED: [Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1580, "
            "OpType=ALLREDUCE, NumelIn=466119168, NumelOut=466119168, Timeout(ms)=600000) ran for 600060 milliseconds "
            "before timing out. (category distributed)\n")
    finally:
        proc.kill()
        server.stop()


def test_a_429_hold_ends_a_read_but_a_follow_waits_it_out_saying_so_once() -> None:
    row = {"status": "RUNNING", "region": "r", "extra": {}}
    held = {"found": True, "row": row, "entries": [], "held_s": 42.0}
    once = Follower(Target((Kind.EXECUTION,), "x-1"), FakeOutput(), print, follow=False, tail=None, color=False)
    assert once.on_result({}, result(held))
    assert once.failed == "Cloud Logging reads are held 42s more after a 429 (rate limited); try again then"
    warnings: list[str] = []
    follower = Follower(Target((Kind.EXECUTION,), "x-1"), FakeOutput(), warnings.append, follow=True, tail=None,
                        color=False)
    assert not follower.on_result({}, result(held)) and not follower.on_result({}, result(held))
    assert warnings == ["Cloud Logging reads held after a 429 (rate limited); following resumes when the hold ends"]


def test_a_private_key_logged_one_entry_per_line_is_hidden_whole_even_across_reads() -> None:
    from arrctl.sources.itemlogs import slim_all

    def logged(n: int, text: str) -> dict[str, Any]:
        return {"insertId": str(n), "timestamp": f"2026-01-01T00:00:{n:02d}Z", "textPayload": text}

    first = [logged(3, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), logged(2, "-----BEGIN PRIVATE KEY-----"),
             logged(1, "loading key")]  # newest first, as the API lists them
    slims, inside = slim_all(first, None, False)
    assert [s["lines"] for s in slims] == [["loading key"], ["[REDACTED]"], ["[REDACTED]"]] and inside
    later, inside = slim_all([logged(5, "after"), logged(4, "-----END PRIVATE KEY-----")], None, inside)
    assert [s["lines"] for s in later] == [["[REDACTED]"], ["after"]] and not inside
