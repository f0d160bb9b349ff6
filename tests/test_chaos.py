"""Chaos (issue 9.2): kill -9 of the supervisor at chosen moments, and 4 arrctl processes on one store.

After each kill no process of the killed arrctl is left, the store opens without being set
aside and no committed terminal fact is lost; four processes sharing one state directory never
see "database is locked" and every check's exit status matches its first line. The long runs
(200 kills, ~100 shared refreshes) are marked slow; the code is bench/chaos.py's.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import alive, load_bench, wait_until

chaos: Any = load_bench("chaos")

# The first refresh finishes (so there are facts to lose); the others die at start-up, while the
# sandbox starts, while the workers fetch, and around the store's commit.
MOMENTS = [30.0, 0.05, 0.4, 0.7, 0.9, 1.1, 30.0]


@pytest.mark.timeout(60)
def test_kill_minus_9_at_chosen_moments(tmp_path: Path) -> None:
    report = chaos.kill_loop(tmp_path, len(MOMENTS), random.Random(0), rotate_every=100, moments=MOMENTS)
    assert report.problems == []
    assert report.refreshes == len(MOMENTS)
    assert report.killed >= 4  # the kills happened mid-run, not after the fact
    assert report.with_children >= 3  # ... while workers or the sandbox were alive
    assert report.facts_checked >= 20  # the first refresh committed facts that were checked after each kill
    assert len(chaos.committed_facts(tmp_path / "kill-0")) >= 20


@pytest.mark.timeout(60)
def test_shared_state_dir_four_processes(tmp_path: Path) -> None:
    report = chaos.shared_run(tmp_path, watch_cycles=2, max_s=45)
    assert report.problems == []
    assert report.by_command["watch"] == 2
    assert {"check", "get", "check-json"} <= set(report.by_command)
    assert report.refreshes >= 5
    assert report.facts >= 20


def test_leftovers_finds_a_process_naming_the_state_dir(tmp_path: Path) -> None:
    """The orphan check is able to fail: a process carrying the state dir in its argv is found."""
    state_dir = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--state-dir", str(state_dir)])
    try:
        assert wait_until(lambda: any(line.startswith(f"{proc.pid}:")
                                      for line in chaos.leftovers(999_999, set(), state_dir)), timeout=5)
        assert chaos.leftovers(999_999, set(), tmp_path / "stat") == []  # a prefix is not the directory
        assert any(line.startswith(f"{proc.pid}:") for line in chaos.leftovers(1, {proc.pid}, tmp_path / "x"))
    finally:
        proc.kill()
        proc.wait()
    assert not alive(proc.pid)


def test_store_checks_are_able_to_fail(tmp_path: Path) -> None:
    """A damaged store file is reported as set aside; facts missing after a kill would be seen."""
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "state.sqlite3").write_bytes(b"this is not a database" * 100)
    problems = chaos.store_opens(tmp_path)
    assert any(p.startswith("set aside: state.sqlite3.corrupt-") for p in problems), problems
    assert chaos.committed_facts(tmp_path) == set()


def test_check_exit_status_must_match_its_first_line() -> None:
    import threading

    report = chaos.SharedReport()
    chaos._judge("check", 1, b"ARRCTL OK - all fine | rows=3\n", b"", report, threading.Lock())
    chaos._judge("check", 2, b"ARRCTL CRITICAL - 1 new failure\n", b"sqlite3.OperationalError: database is locked\n",
                 report, threading.Lock())
    assert report.problems == ["check: exit 1 but first line 'ARRCTL OK - all fine | rows=3'",
                               "check: 'locked' on stderr: sqlite3.OperationalError: database is locked\n"]
    assert report.check_states == {"OK": 1, "CRITICAL": 1}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_chaos_200_kills(tmp_path: Path) -> None:
    began = time.monotonic()
    report = chaos.kill_loop(tmp_path, 200, random.Random(20251122))
    assert report.problems == []
    assert report.refreshes == 200 and report.killed >= 100
    assert time.monotonic() - began < 880


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_chaos_shared_100_refreshes(tmp_path: Path) -> None:
    report = chaos.shared_run(tmp_path, watch_cycles=75, max_s=600)
    assert report.problems == []
    assert report.refreshes >= 80
