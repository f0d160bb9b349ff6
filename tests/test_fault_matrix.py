"""Fault matrix (issue 9.1): every sandbox fault kind on every service, through the installed `arrctl`.

The faulted source gives a one-line error/timeout record with its last good rows, every other
source is ok and complete, no traceback, exit 1 (0 for latency under the deadline and for many
pages, which must give the rows of a clean refresh). The whole matrix is slow; one case per
kind runs in the default suite. The judging logic is bench/faults.py's, shared with `make bench`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import load_bench

faults: Any = load_bench("faults")

DEADLINE_S = 2.5
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


def _run(service: str, label: str, baseline: Any, tmp_path: Path) -> Any:
    result = faults.run_case(service, faults.KINDS_BY_LABEL[label], baseline, tmp_path, DEADLINE_S)
    assert result.problems == [], f"{service}:{label}: {result.problems}"
    return result


def test_fast_subset_covers_every_kind_and_service() -> None:
    assert sorted({label for _, label in FAST}) == sorted(faults.KINDS_BY_LABEL)
    assert sorted({service for service, _ in FAST}) == sorted(faults.SERVICES)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("service", "label"), FAST, ids=[f"{s}-{k}" for s, k in FAST])
def test_fault_case(service: str, label: str, baseline: Any, tmp_path: Path) -> None:
    result = _run(service, label, baseline, tmp_path)
    records = [result.sources[s] for s in faults.AFFECTED[service]]
    assert [r["state"] for r in records] == [EXPECTED_STATE[label]] * len(records)
    assert result.code == (0 if EXPECTED_STATE[label] == "ok" else 1)
    if label.isdigit():  # an HTTP status is named in the one-line reason
        assert all(label in r["error"] for r in records), records
    # Nothing waits past the deadline: the command ends soon after it (start-up and the sandbox aside).
    assert result.wall_s < DEADLINE_S + 3.0


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
@pytest.mark.timeout(40)
@pytest.mark.parametrize(("service", "label"), ALL, ids=[f"{s}-{k}" for s, k in ALL])
def test_full_matrix(service: str, label: str, baseline: Any, tmp_path: Path) -> None:
    _run(service, label, baseline, tmp_path)
