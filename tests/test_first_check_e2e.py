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
            if r["type"] == "row" and r["status"] == "FAILED" and r["source"] != "builds"
            and now - epoch(r["finished"] or r["created"]) > 3600}


def paged(report: str) -> set[str]:
    return set(re.findall(r"^CRITICAL: (\w+ \S+): ", report, re.M))


def test_the_first_check_records_old_failures_as_seen_and_says_how_many(sandbox: Sandbox, tmp_path: Path):
    first = check(tmp_path, sandbox)  # the default window, 1 h
    old = ended_over_an_hour_ago(sandbox, tmp_path)
    assert len(old) >= 7  # in the scenario they ended 3 h to 36 h ago
    head = first.stdout.splitlines()[0]
    assert first.returncode in (1, 2) and not paged(first.stdout) & old, first.stdout
    skipped = int(SKIPPED.search(head).group(1))  # the view moves with the scenario: about len(old)
    assert skipped >= 7 and f"'skipped_failures'={skipped};;;0" in head, head
    second = check(tmp_path, sandbox)
    assert second.returncode in (1, 2) and "first check" not in second.stdout and not paged(second.stdout) & old

    # a damaged store is set aside and rebuilt: the next check is a first check again, not a page storm
    (tmp_path / FILE_NAME).write_bytes(b"not a database" * 100)
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"{FILE_NAME}{suffix}").unlink(missing_ok=True)
    rebuilt = check(tmp_path, sandbox)
    assert "was damaged" in rebuilt.stderr
    assert rebuilt.returncode in (1, 2) and not paged(rebuilt.stdout) & old, rebuilt.stdout
    assert int(SKIPPED.search(rebuilt.stdout.splitlines()[0]).group(1)) >= 7


def test_a_check_with_a_closed_stdout_is_unknown_and_claims_nothing(sandbox: Sandbox, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    config = tmp_path / "config.toml"
    config.write_text("[check]\nfirst_window_s = 604800\n")  # page the scenario's failures
    monkeypatch.setenv("ARRCTL_CONFIG", str(config))
    closed = check(tmp_path / "state", sandbox, shell_suffix=" >&-")
    assert closed.returncode == 3
    assert closed.stderr == "arrctl: error: cannot write to stdout: it is closed\n"
    gone = check(tmp_path / "state", sandbox, shell_suffix=" | true; exit ${PIPESTATUS[0]}")  # no reader
    assert gone.returncode == 3
    assert gone.stderr == "arrctl: error: cannot write to stdout: its reader is gone\n"
    later = check(tmp_path / "state", sandbox)
    assert later.returncode == 2 and later.stdout.startswith("ARRCTL CRITICAL - "), later.stdout
