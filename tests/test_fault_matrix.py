"""Fault matrix (issue 9.1): every sandbox fault kind on every service, through the installed `arrctl`.

The faulted source gives a one-line error/timeout record with its last good rows, every other
source is ok and complete, no traceback, exit 1 (0 for latency under the deadline and for many
pages, which must give the rows of a clean refresh). The whole matrix is slow; one case per
kind runs in the default suite. The judging logic is bench/faults.py's, shared with `make bench`.

Timing never decides a case (issue 12.10): the deadline is scaled to the clean refresh measured
on this machine at the start of the module (bench/faults.py `scaled_deadline`), so a source that
answers has several times what it needs even on a loaded machine, and the faults that must time
out (hang, latency beyond the deadline, trickle) cannot answer within any deadline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import load_bench

faults: Any = load_bench("faults")

DEADLINE_FLOOR_S = 2.5
# One case per kind for the default suite, spread over the services (cheap sources first).
FAST = [("build", "latency>D"), ("vertex", "latency<D"), ("run", "hang"), ("logging", "403"),
        ("wandb", "429"), ("build", "503"), ("wandb", "malformed"), ("vertex", "trickle"),
        ("logging", "pages:3")]
# What the faulted source says in each fast case: a worker killed at its deadline is a timeout,
# an answer that came back wrong is an error.
EXPECTED_STATE = {"latency>D": "timeout", "latency<D": "ok", "hang": "timeout", "403": "error", "429": "error",
                  "503": "error", "malformed": "error", "trickle": "timeout", "pages:3": "ok"}
ALL = [(service, kind.label) for service in faults.SERVICES for kind in faults.KINDS]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One clean refresh into a state directory that every case copies."""
    return faults.make_baseline(tmp_path_factory.mktemp("fault-seed"))


@pytest.fixture(scope="module")
def deadline(baseline: Any) -> float:
    """The cases' deadline, scaled to how fast this machine ran the clean refresh."""
    return faults.scaled_deadline(baseline, DEADLINE_FLOOR_S)


def _run(service: str, label: str, baseline: Any, tmp_path: Path, deadline: float) -> Any:
    result = faults.run_case(service, faults.KINDS_BY_LABEL[label], baseline, tmp_path, deadline)
    assert result.problems == [], f"{service}:{label}: {result.problems}"
    return result


def test_fast_subset_covers_every_kind_and_service() -> None:
    assert sorted({label for _, label in FAST}) == sorted(faults.KINDS_BY_LABEL)
    assert sorted({service for service, _ in FAST}) == sorted(faults.SERVICES)


def test_deadline_scales_with_the_machine() -> None:
    """A slow clean refresh gets a longer deadline, within the floor and the cap."""
    def base(slowest: float) -> Any:
        return faults.Baseline(Path("."), {}, 0.0, {"runner": slowest / 2, "vertex": slowest}, slowest + 1)

    assert faults.scaled_deadline(base(0.4), 2.5) == 2.5
    assert faults.scaled_deadline(base(4.0), 2.5) == faults.DEADLINE_FACTOR * 4.0
    assert faults.scaled_deadline(base(100.0), 2.5) == faults.DEADLINE_CAP_S


def _row(row_id: str, status: str, created: str, message: str | None = None,
         finished: str | None = None) -> dict[str, Any]:
    return {"id": row_id, "status": status, "created": created, "message": message, "finished": finished}


CLEAN_START = 1_750_000_000.0  # 2025-06-15T15:06:40Z: when the clean refresh's sandbox started
CASE_START = CLEAN_START + 60.0
OLD_RUN = _row("run-a", "FAILED", "2025-06-15T13:00:00Z", "OOM at 2025-06-15T13:05:00Z", "2025-06-15T13:05:00Z")
CLEAN = [_row("run-b", "RUNNING", "2025-06-15T14:00:00Z"), OLD_RUN]


def test_rows_may_move_on_with_the_scenario() -> None:
    """Whichever refresh is later in the scenario: active items end, new ones push the oldest out."""
    later = [_row("run-c", "PENDING", "2025-06-15T15:07:50Z"),  # created after the case started
             _row("run-b", "SUCCEEDED", "2025-06-15T14:00:00Z", "Completed: 2 jobs", "2025-06-15T15:07:45Z")]
    assert faults.unexplained_differences("runner", later, CASE_START, CLEAN, CLEAN_START) == []
    # the clean refresh was the later one: it saw run-b end and push an old item out
    assert faults.unexplained_differences("runner", CLEAN, CASE_START, later, CLEAN_START) == []
    shifted = [CLEAN[0], {**OLD_RUN, "message": "OOM at 2025-06-15T14:05:00Z"}]  # times move with the start
    assert faults.unexplained_differences("runner", shifted, CASE_START, CLEAN, CLEAN_START) == []


def test_rows_that_changed_are_caught() -> None:
    """A finished item that says something else, changed status, vanished or came from nowhere."""
    def check(rows: list[dict[str, Any]]) -> list[str]:
        return faults.unexplained_differences("runner", rows, CASE_START, CLEAN, CLEAN_START)

    assert check([CLEAN[0], {**OLD_RUN, "message": "something else"}]) == [
        "runner: run-a says 'something else', said 'OOM at 2025-06-15T13:05:00Z'"]
    assert check([CLEAN[0], {**OLD_RUN, "status": "SUCCEEDED"}]) == ["runner: run-a is SUCCEEDED, was FAILED"]
    assert check(CLEAN[:1]) == ["runner: run-a is missing"]
    stranger = _row("run-z", "FAILED", "2025-06-15T12:00:00Z", "x", "2025-06-15T12:01:00Z")
    assert check([stranger, *CLEAN]) == ["runner: run-z is not in the clean refresh"]


# Generous: the deadline is at most DEADLINE_CAP_S (30 s) and a case takes about one deadline.
@pytest.mark.timeout(150)
@pytest.mark.parametrize(("service", "label"), FAST, ids=[f"{s}-{k}" for s, k in FAST])
def test_fault_case(service: str, label: str, baseline: Any, tmp_path: Path, deadline: float) -> None:
    result = _run(service, label, baseline, tmp_path, deadline)
    records = [result.sources[s] for s in faults.AFFECTED[service]]
    assert [r["state"] for r in records] == [EXPECTED_STATE[label]] * len(records)
    assert result.code == (0 if EXPECTED_STATE[label] == "ok" else 1)
    if label.isdigit():  # an HTTP status is named in the one-line reason
        assert all(label in r["error"] for r in records), records
    # Nothing waits past the deadline: the command ends soon after it; start-up, the sandbox and
    # the kill are allowed what a whole clean command took on this machine, and then some.
    assert result.wall_s < deadline + 2 * baseline.wall_s + 3.0, (result.wall_s, deadline, baseline.wall_s)


def test_judge_catches_a_broken_case(baseline: Any) -> None:
    """The judge is able to fail: a faulted source reported ok, a traceback, a wrong exit code."""
    kind = faults.KINDS_BY_LABEL["hang"]
    records = [{"type": "row", **row} for rows in baseline.rows.values() for row in rows]
    records += [{"type": "source", "source": s, "state": "ok", "rows": len(baseline.rows[s]), "took_s": 0.1,
                 "error": None, "stale_s": None} for s in faults.SOURCES]
    result = faults.judge("vertex", kind, 0, records, "Traceback (most recent call last):", 1.0,
                          baseline.started, baseline)
    assert result.problems == [
        "exit 0, expected 1", "a traceback on stderr",
        "vertex: state ok, expected error or timeout", "vertex: error is not one line: None",
        "vertex: stale_s=None, expected the age of the last good rows"]
    assert result.cell == "ok 1.0s !"


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize(("service", "label"), ALL, ids=[f"{s}-{k}" for s, k in ALL])
def test_full_matrix(service: str, label: str, baseline: Any, tmp_path: Path, deadline: float) -> None:
    _run(service, label, baseline, tmp_path, deadline)
