"""The installed `arrctl` against the embedded fake cloud, run as a user would: pipes, signals, faults."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from conftest import alive, descendants, load_bench

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(60)
faults = load_bench("faults")


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    out.update(extra)
    return out


def arrctl(state: Path, *args: str, timeout: float = 40, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([ARRCTL, "--demo", "--state-dir", str(state), *args], capture_output=True, text=True,
                          timeout=timeout, env=env(**extra))


def test_get_json_all_sources_through_the_real_libraries(tmp_path: Path):
    done = arrctl(tmp_path, "get", "--json")
    assert done.returncode == 0, done.stderr
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    sources = [r for r in records if r["type"] == "source"]
    assert [(s["source"], s["state"]) for s in sources] == [
        ("runner", "ok"), ("builds", "ok"), ("vertex", "ok"), ("active", "ok"), ("completed", "ok")]
    rows = [r for r in records if r["type"] == "row"]
    assert records[: len(rows)] == rows  # rows first, then sources
    assert {r["source"] for r in rows} == {"runner", "builds", "vertex", "active", "completed"}
    for row in rows:
        assert row["created"] is None or row["created"].endswith("Z")
    failed_runner = [r for r in rows if r["source"] == "runner" and r["status"] == "FAILED"]
    assert failed_runner and all(r["message"] and not r["message"].startswith("Task ") for r in failed_runner)
    # a failed Vertex job and a failed build show the training or build error their own logs name,
    # not the platform's wrapper (issue 15)
    failed = {r["id"]: (r["message"], r["category"]) for r in rows if r["status"] == "FAILED"}
    assert failed["1428571428571428013"][0].startswith("workerpool0-0: torch.cuda.OutOfMemoryError: CUDA out of memory.")
    assert failed["1428571428571428013"][1] == "oom"
    assert failed["9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61"] == (
        "No matching distribution found for arr-coc-kernels==0.4.2", "dependency")
    assert done.stderr == ""


@pytest.fixture(scope="module")
def clean_refresh(tmp_path_factory: pytest.TempPathFactory):
    """A clean refresh measured on this machine now (bench/faults.py), to scale deadlines by."""
    return faults.make_baseline(tmp_path_factory.mktemp("clean-refresh"))


@pytest.mark.timeout(150)
def test_wandb_hang_returns_on_time_with_the_others_complete(tmp_path: Path, clean_refresh):
    # 4 s on an idle machine; on a loaded one, 3 times what its slowest source took in a clean
    # refresh, so the others have time to answer whatever the machine's speed (issue 12.10)
    deadline = faults.scaled_deadline(clean_refresh, 4.0)
    started = time.monotonic()
    done = arrctl(tmp_path, "get", "--json", "--deadline", f"{deadline:g}", ARRCTL_SANDBOX_FAULTS="wandb:hang",
                  timeout=deadline + 60)
    took = time.monotonic() - started
    assert done.returncode == 1
    states = {r["source"]: (r["state"], r["error"]) for r in map(orjson.loads, done.stdout.splitlines())
              if r["type"] == "source"}
    # killed at the deadline, or, when a loaded machine scales the deadline past the W&B calls' own
    # socket timeout, ended by that timeout first: a timeout either way, saying how long it waited
    assert states["active"][0] == "timeout" and states["completed"][0] == "timeout"
    assert states["active"][1] == f"no answer within {deadline:g}s" or \
        re.fullmatch(r"W&B: no answer from \S+ within \d+ s", states["active"][1]), states["active"]
    assert all(states[s][0] == "ok" for s in ("runner", "builds", "vertex")), states
    # deadline + grace + start-up and the sandbox (what a whole clean command took here, and then some)
    assert took < deadline + 0.5 + 2 * clean_refresh.wall_s + 1.0, (took, deadline, clean_refresh.wall_s)
    assert "Traceback" not in done.stderr


def test_failed_source_shows_last_good_rows_with_their_age(tmp_path: Path):
    assert arrctl(tmp_path, "get", "vertex", "--json").returncode == 0
    done = arrctl(tmp_path, "get", "vertex", "--json", ARRCTL_SANDBOX_FAULTS="vertex:status:403")
    assert done.returncode == 1
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    source = records[-1]
    assert source["state"] == "error" and "403" in source["error"] and "\n" not in source["error"]
    assert source["stale_s"] is not None and source["stale_s"] >= 0 and source["rows"] > 0
    assert len(records) == source["rows"] + 1


def test_check_pages_once_for_a_failure_then_not_again(tmp_path: Path):
    first = arrctl(tmp_path, "check")
    assert first.returncode == 2, first.stdout
    assert first.stdout.startswith("ARRCTL CRITICAL - ")
    # SPEC: reported by one check only, whatever the format of the later ones
    second = arrctl(tmp_path, "check", "--format", "json")
    verdict = orjson.loads(second.stdout)
    assert verdict["state"] != "CRITICAL" and second.returncode == verdict["code"]
    assert not [p for p in verdict["problems"] if p["kind"] == "new_failure"]
    third = arrctl(tmp_path, "check", "--format", "prom")
    assert set(re.findall(r'^arrctl_new_failures\{category="\w+"\} (\d+)$', third.stdout, re.M)) == {"0"}


def start_watch(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([ARRCTL, "--demo", "--state-dir", str(tmp_path), "watch", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_watch_stops_within_a_second_on_signals_leaving_no_child(tmp_path: Path, signum: int, code: int):
    proc = start_watch(tmp_path, "--json", "--interval", "30")
    first = proc.stdout.readline()  # the first line arrives before the next refresh: flushed
    assert orjson.loads(first)["type"] in ("added", "source")
    family = descendants(proc.pid)
    assert family, "the sandbox process should be running"
    # well within SPEC's second (the interpreter's teardown of the libraries, 0.65 s, is skipped),
    # scaled by what starting and ending a bare Python costs on this machine now (a loaded 2-core
    # machine takes longer for every exit, arrctl's included)
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.monotonic() - began
    sent = time.monotonic()
    proc.send_signal(signum)
    assert proc.wait(5) == code
    assert time.monotonic() - sent < 0.5 + 2 * bare
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(alive(p) for p in family):
        time.sleep(0.02)
    assert not any(alive(p) for p in family), "children left behind"
    assert b"Traceback" not in proc.stderr.read()


def test_watch_piped_to_head_ends_quietly(tmp_path: Path):
    done = subprocess.run(f"'{ARRCTL}' --demo --state-dir '{tmp_path}' watch --interval 1 | head -3; "
                          "echo \"status=${PIPESTATUS[0]}\"", shell=True, executable="/bin/bash",
                          capture_output=True, text=True, timeout=30, env=env())
    lines = done.stdout.splitlines()
    assert len(lines) == 4 and lines[-1] == "status=0", done.stdout
    assert done.stderr == ""


def test_watch_heartbeat_and_cycles(tmp_path: Path):
    # (the interval is start to start: a cold first refresh longer than it on a loaded machine,
    # then a quick second one, would leave no quiet time to beat in after the first; 5 s leaves it)
    done = subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path), "watch", "vertex", "--json",
                           "--interval", "5", "--heartbeat", "0.5", "--cycles", "2"],
                          capture_output=True, text=True, timeout=45, env=env())
    assert done.returncode == 0
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    beats = [e for e in events if e["type"] == "heartbeat"]
    # a first refresh slower than the heartbeat (a loaded machine) is heartbeaten while it runs:
    # cycle 0, nothing answered yet; after it, each beat carries what the last refresh saw
    early = [b for b in beats if b["cycle"] == 0]
    assert all(b["sources"] == {} for b in early), early
    later = [b for b in beats if b["cycle"] >= 1]
    assert later and later[0] == {"type": "heartbeat", "ts": later[0]["ts"], "cycle": 1,
                                  "sources": {"vertex": "ok"}, "running": later[0]["running"]}


def test_get_piped_to_head_ends_quietly(tmp_path: Path):
    done = subprocess.run(f"'{ARRCTL}' --demo --state-dir '{tmp_path}' get --json | head -1; "
                          "echo \"status=${PIPESTATUS[0]}\"", shell=True, executable="/bin/bash",
                          capture_output=True, text=True, timeout=30, env=env())
    assert done.stdout.splitlines()[-1] == "status=0" and done.stderr == ""


def test_demo_state_is_kept_apart(tmp_path: Path):
    arrctl(tmp_path, "get", "builds")
    assert (tmp_path / "demo" / "state.sqlite3").exists()
    assert not (tmp_path / "state.sqlite3").exists()


def test_unusable_state_directory_is_one_warning_not_fatal(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    done = arrctl(blocker / "state", "get", "builds", "--json")
    assert done.returncode == 0
    warnings = done.stderr.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("arrctl: warning: state directory ")
    assert warnings[0].endswith("running without persistence")


def test_a_check_whose_report_cannot_be_written_pages_again_next_time(tmp_path: Path):
    lost = subprocess.run(f"'{ARRCTL}' --demo --state-dir '{tmp_path}' check > /dev/full", shell=True,
                          capture_output=True, text=True, timeout=40, env=env())
    assert lost.returncode == 3 and lost.stderr.startswith("arrctl: error: cannot write to stdout")
    again = arrctl(tmp_path, "check")
    assert again.returncode == 2 and again.stdout.startswith("ARRCTL CRITICAL - ")
