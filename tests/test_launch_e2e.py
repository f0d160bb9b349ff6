"""`arrctl launch` end to end against the sandbox's launch scenarios."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(60)


def launch(tmp_path: Path, scenario: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ARRCTL_SANDBOX_SCENARIO": scenario}
    return subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path), "launch", "--poll", "0.5", *args],
                          capture_output=True, text=True, timeout=50, env=env)


def result(done: subprocess.CompletedProcess) -> dict:
    return orjson.loads(done.stdout)


def test_success_via_vertex_within_seconds(tmp_path: Path):
    done = launch(tmp_path, "default", "--json")
    obj = result(done)
    assert done.returncode == 0, done.stderr
    assert (obj["result"], obj["via"]) == ("success", "vertex")
    assert obj["job"]["status"] in ("QUEUED", "PENDING", "RUNNING") and obj["elapsed_s"] < 15
    assert obj["execution"].startswith("vertex-ai-launcher-")
    assert "started vertex-ai-launcher-" in done.stderr  # the progress goes to stderr
    # its W&B run and queue item, named by the job's label wandb-run-id and env (issue 17)
    assert re.fullmatch(r"[0-9a-f]{8}", obj["wandb_run"] or "") and obj["queue_item"]
    assert base64.b64decode(obj["queue_item"]).startswith(b"RunQueueItem:")


def test_vertex_job_failed(tmp_path: Path):
    obj = result(done := launch(tmp_path, "launch-vertex-fails", "--json"))
    assert done.returncode == 1 and (obj["result"], obj["via"]) == ("failure", "vertex")
    assert obj["message"] and obj["job"]["status"] == "FAILED"


def test_execution_failed_names_the_root_error(tmp_path: Path):
    done = launch(tmp_path, "launch-exec-fails")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0] == 'FAILED: InvalidArgument: 400 Machine type "a3-highgpu-1g" is not supported.'


def test_fatal_log_line_ends_the_wait_while_the_execution_runs(tmp_path: Path):
    obj = result(done := launch(tmp_path, "launch-fatal-log", "--json"))
    assert done.returncode == 1 and (obj["via"], obj["rule"]) == ("logs", "gcp.quota")
    assert obj["message"] == "Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 0.0 in region us-west2."


def test_timeout_exits_124_pointing_to_explain(tmp_path: Path):
    started = time.monotonic()
    done = launch(tmp_path, "launch-stuck", "--timeout", "3")
    assert done.returncode == 124
    assert "see `arrctl explain vertex-ai-launcher-" in done.stdout
    assert time.monotonic() - started < 3 + 6


def test_no_wait_prints_the_execution_name(tmp_path: Path):
    done = launch(tmp_path, "default", "--no-wait")
    assert done.returncode == 0 and done.stdout.strip().startswith("vertex-ai-launcher-")


def test_ctrl_c_leaves_the_execution_running_and_names_it(tmp_path: Path):
    env = {**os.environ, "ARRCTL_SANDBOX_SCENARIO": "launch-stuck"}
    proc = subprocess.Popen([ARRCTL, "--demo", "--state-dir", str(tmp_path), "launch", "--poll", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = proc.stderr.readline()
    assert first.startswith("arrctl: started vertex-ai-launcher-")
    name = first.split()[2]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(5) == 130
    rest = proc.stderr.read()
    assert f"execution {name} is still running" in rest and "Traceback" not in rest


def test_progress_lines_keep_coming_while_vertex_hangs(tmp_path: Path):
    env = {**os.environ, "ARRCTL_SANDBOX_SCENARIO": "launch-stuck", "ARRCTL_SANDBOX_FAULTS": "vertex:hang"}
    proc = subprocess.Popen([ARRCTL, "--demo", "--state-dir", str(tmp_path), "launch", "--timeout", "7"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stamps = []
    for line in proc.stderr:
        stamps.append(time.monotonic())
    assert proc.wait(5) == 124
    stamps.append(time.monotonic())  # the end counts: no silence longer than 5 s anywhere
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(stamps) >= 3 and max(gaps) < 5.5, gaps


def test_a_colleagues_job_does_not_count_the_execution_logs_tell_ours(tmp_path: Path):
    # a colleague's job appears QUEUED at 1 s; ours at 2 s, FAILED: "created after the start" would say success
    obj = result(done := launch(tmp_path, "launch-crowded", "--json"))
    assert done.returncode == 1, done.stderr
    assert (obj["result"], obj["via"], obj["job"]["status"]) == ("failure", "vertex", "FAILED")
    # told by whichever of its logs' ids came first: queue item, run id or resource name
    assert obj["match"] in ("config", "label", "log") and obj["job"]["name"] != "someone-elses-sweep"


def test_a_runner_that_idles_out_launched_nothing(tmp_path: Path):
    done = launch(tmp_path, "launch-idle")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0] == "FAILED: the runner finished without launching anything (Runs: 0)"


def test_without_readable_logs_the_time_window_decides_and_says_so(tmp_path: Path):
    env = {**os.environ, "ARRCTL_SANDBOX_SCENARIO": "default", "ARRCTL_SANDBOX_FAULTS": "logging:status:403"}
    done = subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path), "launch", "--poll", "0.5"],
                          capture_output=True, text=True, timeout=50, env=env)
    assert done.returncode == 0, done.stderr
    assert "  matched by time only: created after the start (the logs named no job)" in done.stdout.splitlines()


def test_timeout_bounds_the_start_of_the_job_too(tmp_path: Path):
    env = {**os.environ, "ARRCTL_SANDBOX_FAULTS": "run:hang"}
    began = time.monotonic()
    done = subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path), "launch", "--timeout", "5"],
                          capture_output=True, text=True, timeout=50, env=env)
    took = time.monotonic() - began
    assert done.returncode == 124, done.stderr
    assert done.stdout.startswith("TIMEOUT: Cloud Run did not answer the start of vertex-ai-launcher in us-central1")
    assert took < 5 + 4  # the timeout and the sandbox's start, not 30 s of RunJob


def test_a_hung_vertex_does_not_hold_back_the_execution(tmp_path: Path):
    # the execution fails at 5 s; Vertex never answers (each of its polls runs into a 15 s deadline)
    env = {**os.environ, "ARRCTL_SANDBOX_SCENARIO": "launch-exec-fails", "ARRCTL_SANDBOX_FAULTS": "vertex:hang"}
    began = time.monotonic()
    done = subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path), "launch", "--poll", "0.5", "--json"],
                          capture_output=True, text=True, timeout=50, env=env)
    took = time.monotonic() - began
    assert done.returncode == 1, done.stderr
    assert result(done)["via"] in ("execution", "logs")  # its fatal log line or its end
    assert took < 12  # not held until the hung Vertex poll's 15 s deadline
