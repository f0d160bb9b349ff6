"""What the real APIs do (issue 14), as a user sees it: the installed `arrctl --demo` on scenario real-apis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(120)


def run(state: Path, *args: str, faults: str = "") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    env["ARRCTL_SANDBOX_SCENARIO"] = "real-apis"
    if faults:
        env["ARRCTL_SANDBOX_FAULTS"] = faults
    return subprocess.run([ARRCTL, "--demo", "--state-dir", str(state), *args], capture_output=True, text=True,
                          timeout=90, env=env)


def records(done: subprocess.CompletedProcess) -> list[dict]:
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def test_check_pages_a_timeout_and_warns_about_a_build_pending_approval(tmp_path: Path):
    done = run(tmp_path, "check", "--format", "json", "--deadline", "20")
    verdict = orjson.loads(done.stdout)
    assert done.returncode == 2, done.stderr
    problems = {(p["source"], p["id"]): p for p in verdict["problems"]}
    timeout = problems[("runner", "vertex-ai-launcher-to5x2")]
    assert (timeout["severity"], timeout["kind"]) == ("CRITICAL", "new_failure")
    assert timeout["message"].startswith("requests.exceptions.ReadTimeout: ")  # from its logs, not Cloud Run's words
    pending = problems[("builds", "c3a2e5f4-3331-4c2d-9e3f-4a5b6c7d8e01")]
    assert (pending["severity"], pending["kind"], pending["message"]) == (
        "WARNING", "queued_build", "pending for 30m (limit 10m)")
    # the retried success is not a failure; the multi-task one is FAILED, not CANCELLED
    assert ("runner", "vertex-ai-launcher-rt2s0") not in problems
    assert problems[("runner", "vertex-ai-launcher-mt4k1")]["message"] == "KeyError: 'runQueueItemId'"


def test_explain_judges_the_last_attempt(tmp_path: Path):
    done = run(tmp_path, "explain", "vertex-ai-launcher-rt2s0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "SUCCEEDED: Completed: 2 jobs"
    failed = orjson.loads(run(tmp_path, "explain", "vertex-ai-launcher-rt3f9", "--json").stdout)
    assert failed["message"] == "ResourceExhausted: 429 Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 0.0 in region us-central1."


def test_logging_down_shows_cloud_runs_words_until_the_logs_are_read(tmp_path: Path):
    down = run(tmp_path, "get", "runner", "--json", faults="logging:status:503")
    assert down.returncode == 1
    rows = {r["id"]: r for r in records(down) if r["type"] == "row"}
    failed = rows["vertex-ai-launcher-mt4k1"]
    assert failed["message"] == (
        "Cloud Run: Task vertex-ai-launcher-mt4k1-task1 failed with message: The container exited with an error.")
    assert failed["extra"]["logs_unread"] is True
    # the same state within the read's backoff (sources/logs.py): still Cloud Run's words, unremembered
    held = run(tmp_path, "get", "runner", "--json")
    still = {r["id"]: r for r in records(held) if r["type"] == "row"}["vertex-ai-launcher-mt4k1"]
    assert still["message"] == failed["message"] and still["extra"]["logs_unread"] is True
    up = run(tmp_path / "later", "get", "runner", "--json")  # logs readable: the root error
    assert up.returncode == 0, up.stderr
    again = {r["id"]: r for r in records(up) if r["type"] == "row"}["vertex-ai-launcher-mt4k1"]
    assert again["message"] == "KeyError: 'runQueueItemId'" and "logs_unread" not in again["extra"]
