"""A check as cron runs it: the first check of a state directory, a report nobody can receive.

Issue 12: the very first `check` paged "7 new failures", some two days old; a check with a closed
stdout exited 0 and counted its failures as reported.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import orjson
import pytest

from arrctl.model import epoch
from arrctl.sandbox import Sandbox
from arrctl.store import FILE_NAME

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(120)
SKIPPED = re.compile(r"first check: (\d+) failures? that ended over 1h00m ago recorded as seen, not paged")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(read_env=False) as running:
        yield running


def _env(sandbox: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    return {**env, **sandbox.env()}


def check(state: Path, sandbox: Sandbox, *args: str, shell_suffix: str = "") -> subprocess.CompletedProcess:
    command = " ".join([f"'{ARRCTL}'", "--state-dir", f"'{state}'", "check", *args]) + shell_suffix
    return subprocess.run(command, shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60,
                          env=_env(sandbox))


def ended_over_an_hour_ago(sandbox: Sandbox, tmp_path: Path) -> set[str]:
    """The failures `check` may page that ended more than an hour ago (the scenario moves: ask it)."""
    done = subprocess.run([ARRCTL, "--state-dir", str(tmp_path / "get"), "get", "--json"], capture_output=True,
                          timeout=60, env=_env(sandbox))
    now = time.time()
    return {f"{r['source']} {r['id']}" for r in map(orjson.loads, done.stdout.splitlines())
            if r["type"] == "row" and (r["status"] == "FAILED" or (r["source"] in ("runner", "builds")
                                                                   and r["status"] == "TIMEOUT"))
            and now - epoch(r["finished"] or r["created"]) > 3600}  # builds too: [builds] failure_severity


def paged(report: str) -> set[str]:
    return set(re.findall(r"^CRITICAL: (\w+ \S+): ", report, re.M))


def first_check(state: Path, sandbox: Sandbox, tmp_path: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """A check whose summary must count the old failures in view: the scenario moves (new executions
    push old ones out of the newest five), so that count lies between what was in view before and after."""
    before = ended_over_an_hour_ago(sandbox, tmp_path)
    done = check(state, sandbox)
    after = ended_over_an_hour_ago(sandbox, tmp_path)
    head = done.stdout.splitlines()[0]
    assert done.returncode in (1, 2) and not paged(done.stdout) & (before | after), done.stdout
    found = SKIPPED.search(head)
    assert found and len(before & after) <= int(found.group(1)) <= len(before | after), (head, before, after)
    assert f"'skipped_failures'={found.group(1)};;;0" in head
    return done, before | after


def test_the_first_check_records_old_failures_as_seen_and_says_how_many(sandbox: Sandbox, tmp_path: Path):
    _, old = first_check(tmp_path, sandbox, tmp_path)  # the default window, 1 h
    assert len(old) >= 5  # in the scenario they ended 3 h to 36 h ago
    second = check(tmp_path, sandbox)
    assert second.returncode in (1, 2) and "first check" not in second.stdout and not paged(second.stdout) & old

    # a damaged store is set aside and rebuilt: the next check is a first check again, not a page storm
    (tmp_path / FILE_NAME).write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"{FILE_NAME}{suffix}").unlink(missing_ok=True)
    rebuilt, _ = first_check(tmp_path, sandbox, tmp_path)
    assert "was damaged" in rebuilt.stderr


def test_a_check_with_a_closed_stdout_is_unknown_and_claims_nothing(sandbox: Sandbox, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "config.toml"
    config.write_text("regions = [\"us-central1\"]\n[check]\nfirst_window_s = 604800\n")  # page the scenario's failures
    monkeypatch.setenv("ARRCTL_CONFIG", str(config))
    closed = check(tmp_path / "state", sandbox, shell_suffix=" >&-")
    assert closed.returncode == 3
    assert closed.stderr == "arrctl: error: cannot write to stdout: it is closed\n"
    gone = check(tmp_path / "state", sandbox, shell_suffix=" | true; exit ${PIPESTATUS[0]}")  # no reader
    assert gone.returncode == 3
    assert gone.stderr == "arrctl: error: cannot write to stdout: its reader is gone\n"
    later = check(tmp_path / "state", sandbox)
    assert later.returncode == 2 and later.stdout.startswith("ARRCTL CRITICAL - "), later.stdout


def test_raising_completed_limit_later_pages_no_history(sandbox: Sandbox, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    """Old W&B runs that come into view only when the window widens ended before the first check's
    window: they are recorded as seen, like the first check's own, and the summary says how many."""
    config = tmp_path / "config.toml"
    monkeypatch.setenv("ARRCTL_CONFIG", str(config))
    config.write_text("regions = [\"us-central1\"]\n[wandb]\ncompleted_limit = 2\n")
    first = check(tmp_path / "state", sandbox, "--format", "json")
    assert first.returncode in (1, 2), first.stderr
    config.write_text("regions = [\"us-central1\"]\n[wandb]\ncompleted_limit = 20\n")
    wider = check(tmp_path / "state", sandbox, "--format", "json")
    verdict = orjson.loads(wider.stdout)
    old = {r["id"] for r in map(orjson.loads, subprocess.run(
        [ARRCTL, "--state-dir", str(tmp_path / "get"), "get", "completed", "--json"], capture_output=True,
        timeout=60, env=_env(sandbox)).stdout.splitlines())
           if r["type"] == "row" and r["status"] == "FAILED" and time.time() - epoch(r["finished"] or r["created"]) > 7200}
    assert len(old) >= 4  # the scenario's runs that failed 3 h to 36 h ago
    assert not {p["id"] for p in verdict["problems"] if p["source"] == "completed"} & old, verdict["summary"]
    late = re.search(r"; (\d+) failures that ended over 1h00m before the first check came into view, "
                     r"recorded as seen, not paged", verdict["summary"])
    assert late and int(late.group(1)) >= len(old) - 1, verdict["summary"]  # the 2 newest could hold one
    assert "first check:" not in verdict["summary"]
