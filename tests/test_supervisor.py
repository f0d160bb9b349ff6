"""The supervisor with real worker processes that misbehave in every way the predecessor's did."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from arrctl.model import make_row
from arrctl.signals import Interrupted, SignalReceiver
from arrctl.sources import FetchContext, SourceError
from arrctl.supervisor import Supervisor, WorkerSpec

from conftest import alive, children_of, wait_until

GRACE = 0.1
CTX = FetchContext(config=None)


def spec(name: str, fetch, deadline: float = 1.0) -> WorkerSpec:
    return WorkerSpec(name, CTX, deadline, fetch)


def answers(ctx, emit):
    emit.plan(["us-central1", "europe-west2"])
    emit.rows([make_row("runner", "a", "RUNNING", region="us-central1")], part="us-central1")
    emit.rows([make_row("runner", "b", "FAILED", region="europe-west2")], part="europe-west2")
    emit.facts([{"source": "runner", "id": "b", "status": "FAILED", "message": "boom"}])
    emit.call("run", 2)


def hangs_in_socket_read(ctx, emit):
    emit.plan(["us-central1", "europe-west2", "asia-east1"])
    emit.rows([make_row("runner", "a", "RUNNING", region="us-central1")], part="us-central1")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    client.recv(1)  # the server never answers


def ignores_sigterm(ctx, emit):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.01)


def busy_loops(ctx, emit):
    n = 0
    while True:
        n += 1


def exits_3(ctx, emit):
    os._exit(3)


def raises(ctx, emit):
    raise RuntimeError("token expired\nsecond line of detail")


def source_error(ctx, emit):
    raise SourceError("403 Forbidden: caller lacks run.executions.list")


def fifty_megabytes(ctx, emit):
    rows = [make_row("runner", f"id-{i}", "RUNNING", message="x" * 490) for i in range(100_000)]
    emit.rows(rows)


def test_answering_worker_gives_rows_facts_and_calls():
    results = Supervisor(grace_s=GRACE).run([spec("runner", answers)])
    result = results["runner"]
    assert result.state == "ok" and result.error is None
    assert [r["id"] for r in result.rows] == ["a", "b"]
    assert result.facts == [{"source": "runner", "id": "b", "status": "FAILED", "message": "boom"}]
    assert result.calls == {"run": 2}
    assert result.missing == []


@pytest.mark.parametrize("fetch", [hangs_in_socket_read, ignores_sigterm, busy_loops])
def test_bad_worker_is_gone_at_deadline_plus_grace(fetch):
    started = time.monotonic()
    results = Supervisor(grace_s=GRACE).run([spec("vertex", fetch, deadline=0.5), spec("runner", answers, 5.0)])
    took = time.monotonic() - started
    assert results["vertex"].state == "timeout"
    assert results["vertex"].error.startswith("no answer within 0.5s")
    assert results["runner"].state == "ok" and len(results["runner"].rows) == 2
    assert took < 0.5 + GRACE + 0.5, took
    assert children_of(os.getpid()) == []


def test_rows_sent_before_the_kill_are_kept_and_missing_regions_named():
    result = Supervisor(grace_s=GRACE).run([spec("runner", hangs_in_socket_read, 0.4)])["runner"]
    assert result.state == "timeout"
    assert [r["id"] for r in result.rows] == ["a"]
    assert result.missing == ["europe-west2", "asia-east1"]
    assert result.error == "no answer within 0.4s; 1 of 3 answered, missing: europe-west2, asia-east1"


def test_worker_exiting_without_answer_is_an_error():
    result = Supervisor(grace_s=GRACE).run([spec("builds", exits_3)])["builds"]
    assert (result.state, result.error) == ("error", "worker exited with status 3 before answering")


def test_exception_becomes_one_line_error():
    result = Supervisor(grace_s=GRACE).run([spec("active", raises)])["active"]
    assert result.state == "error"
    assert result.error.startswith("RuntimeError: token expired (at test_supervisor.py:")
    assert "\n" not in result.error


def test_source_error_message_is_kept_verbatim():
    result = Supervisor(grace_s=GRACE).run([spec("runner", source_error)])["runner"]
    assert (result.state, result.error) == ("error", "403 Forbidden: caller lacks run.executions.list")


@pytest.mark.timeout(150)
def test_fifty_megabyte_snapshot_does_not_deadlock():
    # a deadlock would end in the kill at the deadline; a loaded 2-core machine needs well over 20 s
    # for 50 MB of JSON each way, so the deadline is generous rather than a measure of speed
    result = Supervisor(grace_s=GRACE).run([spec("completed", fifty_megabytes, deadline=120)])["completed"]
    assert result.state == "ok"
    assert len(result.rows) == 100_000 and result.rows[-1]["id"] == "id-99999"


def test_interrupt_kills_every_worker_at_once():
    receiver = SignalReceiver().install()
    try:
        started = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        old = signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT))
        with pytest.raises(Interrupted) as stopped:
            Supervisor(grace_s=GRACE, receiver=receiver).run(
                [spec("vertex", ignores_sigterm, 30), spec("runner", hangs_in_socket_read, 30)])
        signal.signal(signal.SIGALRM, old)
        assert stopped.value.exit_code == 130
        assert time.monotonic() - started < 1.5
        assert children_of(os.getpid()) == []
    finally:
        receiver.uninstall()


ORPHAN_SCRIPT = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {tests!r})
    from arrctl.sources import FetchContext
    from arrctl.supervisor import Supervisor, WorkerSpec
    def hang(ctx, emit):
        open(os.path.join({tmp!r}, str(os.getpid())), "w").close()
        time.sleep(600)
    Supervisor(grace_s=0.1).run([WorkerSpec(s, FetchContext(None), 600, hang) for s in ("runner", "vertex", "active")])
""")


def test_kill_9_of_the_supervisor_leaves_no_worker(tmp_path: Path):
    script = ORPHAN_SCRIPT.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        assert wait_until(lambda: len(list(tmp_path.iterdir())) == 3, timeout=10)
        pids = [int(p.name) for p in tmp_path.iterdir()]
        assert all(alive(pid) for pid in pids)
        parent.kill()
        parent.wait(5)
        assert wait_until(lambda: not any(alive(pid) for pid in pids), timeout=2), "orphaned workers"
    finally:
        parent.kill()


def test_poll_takes_each_result_as_it_comes_while_another_source_hangs():
    """Supervisor.poll (launch): a hung source never holds back the other's results."""
    seen: list[tuple[str, str, float]] = []
    began = time.monotonic()

    def on_result(name, result):
        seen.append((name, result.state, time.monotonic() - began))
        return sum(1 for n, _s, _t in seen if n == "runner") >= 3

    specs = {"runner": spec("runner", answers, 5.0), "vertex": spec("vertex", hangs_in_socket_read, 30.0)}
    Supervisor(grace_s=GRACE).poll(lambda name: specs[name], ["runner", "vertex"], 0.2, began + 20, on_result)
    assert [(n, s) for n, s, _t in seen] == [("runner", "ok")] * 3  # the hung one never answered
    assert seen[-1][2] < 10  # three rounds of the quick one, never waiting for the 30 s deadline
    assert wait_until(lambda: children_of(os.getpid()) == [], 5)  # the hung worker was killed and reaped
