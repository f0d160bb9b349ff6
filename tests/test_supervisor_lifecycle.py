"""The supervisor's lifecycle logic over a fake system in virtual time: no fork, no wall clock.

SIGTERM goes at the deadline, SIGKILL at the deadline plus the grace, every worker is reaped,
its pipe closed and its group swept, whatever it does; the exact times are asserted because the
clock is the fake's. tests/test_supervisor.py keeps the real-process cases (a socket read that
never returns, a trapped SIGTERM, a kill -9 of the supervisor, 50 MB through one pipe).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arrctl.config import Config
from arrctl.model import make_row
from arrctl.refresh import Endpoints, Refresher
from arrctl.sources import FetchContext
from arrctl.store import Store
from arrctl.supervisor import Supervisor, WorkerSpec, WorkerState, _Worker
from arrctl.system import Child

from fakes import FakeSystem, Script, message

GRACE = 0.5
CTX = FetchContext(config=Config())
RUNNING_A = make_row("runner", "a", "RUNNING", region="us-central1")
ANSWERS = Script(writes=[(0.25, message("rows", part=None, rows=[RUNNING_A])), (0.25, message("done"))],
                 exits_at=0.25)
HANGS = Script()
TRAPS_TERM = Script(on_term="ignore")


def spec(name: str, deadline: float = 2.0) -> WorkerSpec:
    return WorkerSpec(name, CTX, deadline)


def run(scripts: dict[str, Script], specs: list[WorkerSpec]) -> tuple[FakeSystem, dict]:
    system = FakeSystem(scripts)
    results = Supervisor(grace_s=GRACE, system=system).run(specs)
    return system, results


def assert_all_gone(system: FakeSystem) -> None:
    assert system.open_fds == set()
    assert all(p.released for p in system.processes)
    assert sorted(system.swept) == sorted(p.name for p in system.processes)


def test_term_at_the_deadline_then_kill_after_the_grace() -> None:
    system, results = run({"vertex": TRAPS_TERM}, [spec("vertex", 2.0)])
    assert system.signals == [(2.0, "vertex", "SIGTERM"), (2.5, "vertex", "SIGKILL")]
    result = results["vertex"]
    assert (result.state, result.error, result.took_s) == ("timeout", "no answer within 2s", 2.5)
    assert_all_gone(system)


def test_a_worker_that_dies_of_sigterm_gets_no_sigkill() -> None:
    system, results = run({"vertex": HANGS}, [spec("vertex", 2.0)])
    assert system.signals == [(2.0, "vertex", "SIGTERM")]
    assert (results["vertex"].state, results["vertex"].took_s) == ("timeout", 2.0)
    assert_all_gone(system)


def test_an_answering_worker_is_never_signalled() -> None:
    system, results = run({"runner": ANSWERS}, [spec("runner")])
    assert system.signals == []
    result = results["runner"]
    assert (result.state, result.took_s, [r["id"] for r in result.rows]) == ("ok", 0.25, ["a"])
    assert_all_gone(system)


def test_a_hung_worker_never_delays_the_others_result() -> None:
    system, results = run({"runner": ANSWERS, "vertex": TRAPS_TERM}, [spec("vertex", 3.0), spec("runner", 3.0)])
    assert (results["runner"].state, results["runner"].took_s) == ("ok", 0.25)
    assert (results["vertex"].state, results["vertex"].took_s) == ("timeout", 3.5)
    assert system.signals == [(3.0, "vertex", "SIGTERM"), (3.5, "vertex", "SIGKILL")]


def test_rows_sent_before_the_kill_are_kept_and_the_missing_parts_named() -> None:
    partial = Script(writes=[(0.5, message("plan", parts=["us-central1", "europe-west2", "asia-east1"])),
                             (0.5, message("rows", part="us-central1", rows=[RUNNING_A]))])
    system, results = run({"runner": partial}, [spec("runner", 1.0)])
    result = results["runner"]
    assert [r["id"] for r in result.rows] == ["a"]
    assert result.missing == ["europe-west2", "asia-east1"]
    assert result.error == "no answer within 1s; 1 of 3 answered, missing: europe-west2, asia-east1"


def test_an_answer_just_before_the_term_counts() -> None:
    """`done` read before the worker died of SIGTERM: the answer stands, no timeout."""
    late = Script(writes=[(1.75, message("rows", part=None, rows=[RUNNING_A])), (1.75, message("done"))])
    system, results = run({"runner": late}, [spec("runner", 2.0)])
    assert system.signals == [(2.0, "runner", "SIGTERM")]
    assert results["runner"].state == "ok" and results["runner"].error is None


def test_a_worker_exiting_without_an_answer_is_an_error() -> None:
    system, results = run({"builds": Script(exits_at=0.5, code=3)}, [spec("builds")])
    result = results["builds"]
    assert (result.state, result.error, result.took_s) == ("error", "worker exited with status 3 before answering", 0.5)
    assert system.signals == []


def test_an_error_message_from_the_worker_is_its_reason() -> None:
    fails = Script(writes=[(0.25, message("error", message="403 Forbidden: no", error_kind="other"))], exits_at=0.25)
    _system, results = run({"runner": fails}, [spec("runner")])
    assert (results["runner"].state, results["runner"].error) == ("error", "403 Forbidden: no")


def test_an_exception_while_waiting_kills_and_reaps_every_worker() -> None:
    system = FakeSystem({"runner": HANGS, "vertex": TRAPS_TERM})

    def tick() -> None:
        if system.now >= 1.0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Supervisor(grace_s=GRACE, system=system).run([spec("runner", 30), spec("vertex", 30)], tick)
    assert system.signals == [(1.0, "runner", "SIGKILL"), (1.0, "vertex", "SIGKILL")]
    assert_all_gone(system)


def test_poll_restarts_each_name_on_its_own_rhythm() -> None:
    system = FakeSystem({"runner": ANSWERS, "vertex": HANGS})
    seen: list[tuple[float, str, str]] = []

    def on_result(name: str, result) -> bool:
        seen.append((system.now, name, result.state))
        return False

    Supervisor(grace_s=GRACE, system=system).poll(
        lambda name: spec(name, 3.0), ["runner", "vertex"], 1.0, 4.5, on_result)
    assert seen == [(0.25, "runner", "ok"), (1.25, "runner", "ok"), (2.25, "runner", "ok"),
                    (3.0, "vertex", "timeout"), (3.25, "runner", "ok"), (4.25, "runner", "ok")]
    # the second vertex worker, started at 3.0, is killed when polling ends
    assert system.signals == [(3.0, "vertex", "SIGTERM"), (4.5, "vertex", "SIGKILL")]
    assert_all_gone(system)


def test_a_worker_state_only_moves_forward() -> None:
    worker = _Worker(spec=spec("runner"), child=Child(pid=1, fd=3, sentinel=4), started=0.0)
    worker.move(WorkerState.KILLED)  # an interrupt skips TERMINATING
    with pytest.raises(ValueError, match="KILLED cannot become TERMINATING"):
        worker.move(WorkerState.TERMINATING)
    worker.move(WorkerState.REAPED)
    with pytest.raises(ValueError):
        worker.move(WorkerState.REAPED)


def test_the_refresher_runs_on_the_supervisor_it_is_given(tmp_path: Path) -> None:
    """No fork: the refresh merges what the fake workers sent, and a timed-out source shows memory."""
    store = Store(tmp_path)
    config = Config(project="p", wandb_entity="e", wandb_project="w", wandb_api_key="k" * 40)
    old = make_row("vertex", "j1", "RUNNING", region="us-central1", created="2026-01-01T00:00:00Z")
    store.save_refresh([], {"vertex": [old]})
    system = FakeSystem({"runner": ANSWERS, "vertex": HANGS})
    refresher = Refresher(config, store, Endpoints(), deadline_s=2.0, supervisor=Supervisor(grace_s=GRACE, system=system))
    results = refresher.refresh(["runner", "vertex"])
    assert (results["runner"].state, [r["id"] for r in results["runner"].rows]) == ("ok", ["a"])
    assert (results["vertex"].state, [r["id"] for r in results["vertex"].rows]) == ("timeout", ["j1"])
    assert system.signals == [(2.0, "vertex", "SIGTERM")]
    store.close()
