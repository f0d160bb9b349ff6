"""Filters, output shapes, check's builds and watch --bell through the installed `arrctl --demo`.

The demo's times are offsets from its sandbox's start, so the rows chosen here have ages that
stay the same for minutes (12h ago, 20h ago); -o wide's absolute times are matched by shape.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from arrctl.cli import cli

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(120)


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    return {**out, "TZ": "UTC", **extra}


def arrctl(state: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([ARRCTL, "--demo", "--state-dir", str(state), *args], capture_output=True, text=True,
                          timeout=60, env=env(**extra))


# the root errors of the runs' console logs (issue 15), not W&B's summary
NCCL = "socketStartConnect: Connect to 10.128.0.42<41877> failed : Software caused connection abort"
OOM = ("torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB. GPU 0 has a total capacty "
       "of 22.03 GiB of which 1.12 GiB is free. Of the allocated memory 19.87 GiB is allocated by PyTorch, and "
       "612.45 MiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try "
       "setting max_split_size_mb to avoid fragmentation.  See documentation for Memory Management and\u2026")
NO_FILE = "FileNotFoundError: [Errno 2] No such file or directory: 'gs://arr-demo-data/coc/train-00000.parquet'"


def test_status_and_since_filter_the_table_and_say_how_many_they_hid(tmp_path: Path):
    done = arrctl(tmp_path, "get", "completed", "--status", "failed", "--since", "1d")
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    # (a crash's words name the time of its last heartbeat, which moves with the demo's start)
    assert re.fullmatch(r"  FAILED  s4d8f2gh  restless-tide-58  -       56m ago    28m   run crashed: no heartbeat "
                        r"since \S+Z", lines.pop(2))
    assert lines == [
        "Completed W&B runs",
        "  STATUS  ID        NAME              REGION  STARTED    TIME  MESSAGE",
        f"  FAILED  p2t6v9jx  sunny-river-39    -       3h32m ago  29m   {OOM}",
        f"  FAILED  j1e5u8ot  cosmic-field-49   -       12h ago    31m   {NCCL}",
        f"  FAILED  h0q4z7lx  vivid-brook-47    -       20h ago    45s   {NO_FILE}",
        "  (6 hidden by filters)",
        "",
    ]


def test_name_output_lists_the_ids_one_per_line_for_xargs(tmp_path: Path):
    # (36 h ago, lucid-dawn-43 leaves the newest ten completed runs when a run finishes at 8 s: --since leaves it out)
    done = arrctl(tmp_path, "get", "--status", "FAILED", "--since", "30h", "-o", "name")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == ("vertex-ai-launcher-t2v6b\n9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61\n1428571428571428013\n"
                           "2857142857142856002\ns4d8f2gh\np2t6v9jx\nj1e5u8ot\nh0q4z7lx\nf3r6j2nb\n")
    # (1428571428571428099, created 48 h ago, is not among the ten newest jobs: no name brings it back)
    globbed = arrctl(tmp_path, "get", "vertex", "--name", "arr-coc-train-[hp]*", "--name", "*99", "-o", "name")
    assert globbed.stdout == "1428571428571428061\n1428571428571428013\n2857142857142856002\n"


def test_user_and_tag_choose_wandb_runs_and_hide_everything_else(tmp_path: Path):
    done = arrctl(tmp_path, "get", "active", "completed", "runner", "--user", "MIRA", "--tag", "a100")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "Runner executions",
        "  (5 hidden by filters)",  # executions have no user: a filter on users hides them
        "",
        "Active W&B runs",
        "  (3 hidden by filters)",
        "",
        "Completed W&B runs",
        "  STATUS     ID        NAME           REGION  STARTED  TIME  MESSAGE",
        "  CANCELLED  l9h6r3qc  fancy-snow-51  -       3h ago   3m",
        "  (9 hidden by filters)",
        "",
    ]


def test_no_headers_prints_the_rows_alone(tmp_path: Path):
    done = arrctl(tmp_path, "get", "completed", "--no-headers", "--tag", "spot,l4", "--status", "failed")
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    # the crashes' times are the sandbox's clock; (lucid-dawn-43, 36 h ago, is no longer among the newest ten)
    crashed_at = [line.rsplit(" ", 1)[1] for line in (lines[0], lines[2])]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", at) for at in crashed_at), crashed_at
    assert lines == [
        f"  FAILED  s4d8f2gh  restless-tide-58  -       56m ago  28m   run crashed: no heartbeat since {crashed_at[0]}",
        f"  FAILED  j1e5u8ot  cosmic-field-49   -       12h ago  31m   {NCCL}",
        f"  FAILED  f3r6j2nb  amber-peak-45     -       28h ago  45m   run crashed: no heartbeat since {crashed_at[1]}",
    ]


def test_wide_output_adds_machine_accelerator_links_and_url_with_the_start_time(tmp_path: Path):
    done = arrctl(tmp_path, "get", "vertex", "--region", "europe-west4", "-o", "wide")
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    stamp = r"\d\d-\d\d \d\d:\d\d"  # TZ=UTC; the sandbox's start decides the minute
    console = "https://console.cloud.google.com/vertex-ai/locations/europe-west4/training"
    expected = [
        re.escape("Vertex AI custom jobs"),
        re.escape("  STATUS     ID                   NAME                    REGION        STARTED      TIME   MACHINE"
                  "        ACCELERATOR           LINKS               URL" + " " * (119 - 3 + 2) + "MESSAGE"),
        re.escape("  FAILED     2857142857142856002  arr-coc-train-h2j7k4lp  europe-west4  ") + stamp + re.escape(
            "  -      g2-standard-4  NVIDIA_L4 x1          wandb_run=h2j7k4lp  "
            f"{console}/2857142857142856002/cpu?project=123456789012  Quota exceeded for "
            "aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus with base model: requested 1, limit 0 in "
            "region europe-west4."),
        re.escape("  SUCCEEDED  2857142857142856001  arr-coc-train-5n8w2xkd  europe-west4  ") + stamp + re.escape(
            "  2h08m  a2-highgpu-1g  NVIDIA_TESLA_A100 x1  wandb_run=5n8w2xkd  "
            f"{console}/2857142857142856001/cpu?project=123456789012"),
        re.escape("  (8 hidden by filters)"),  # the ten newest jobs less these two
        "",
    ]
    assert len(lines) == len(expected)
    for line, pattern in zip(lines, expected):
        assert re.fullmatch(pattern, line), (line, pattern)
    plain = arrctl(tmp_path, "get", "vertex", "--region", "europe-west4")
    assert "wandb_run=" not in plain.stdout and "https://console" not in plain.stdout.split("MESSAGE")[0]


def test_watch_with_filters_adds_only_the_matching_rows(tmp_path: Path):
    done = arrctl(tmp_path, "watch", "vertex", "--status", "failed", "--since", "1d", "--cycles", "1")
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    clock = lines[0][:8]
    assert re.fullmatch(r"\d\d:\d\d:\d\d", clock)
    assert lines == [
        # (the root error of its replica's log, not the job's error field: issue 15)
        f"{clock}  vertex    + 1428571428571428013 (arr-coc-train-p2t6v9jx)  FAILED  us-central1  workerpool0-0: {OOM}",
        f"{clock}  vertex    + 2857142857142856002 (arr-coc-train-h2j7k4lp)  FAILED  europe-west4  Quota exceeded "
        "for aiplatform.googleapis.com/custom_model_training_nvidia_l4_gpus with base model: requested 1, limit 0 "
        "in region europe-west4.",
    ]


def test_json_keeps_its_records_and_counts_the_rows_shown(tmp_path: Path):
    done = arrctl(tmp_path, "get", "runner", "--status", "failed", "-o", "json")
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [(r["type"], r.get("id")) for r in records] == [("row", "vertex-ai-launcher-t2v6b"), ("source", None)]
    assert (records[1]["state"], records[1]["rows"]) == ("ok", 1)


def test_a_failed_source_whose_rows_are_all_filtered_out_is_not_called_empty(tmp_path: Path):
    assert arrctl(tmp_path, "get", "vertex").returncode == 0  # rows to remember
    down = "18 of 18 regions failed: us-central1, us-east1 and 16 more: 503 Service Unavailable: The service is " \
           "currently unavailable. (sandbox fault vertex:status:503)"
    bare = arrctl(tmp_path, "get", "vertex", "--status", "cancelled", "--no-headers",
                  ARRCTL_SANDBOX_FAULTS="vertex:status:503")
    assert bare.returncode == 1
    assert re.fullmatch(re.escape("  CANCELLED  1428571428571428041  arr-coc-train-r8k2m6qd  us-central1  ")
                        + r"\d+h\d+m ago" + re.escape("  2h21m  CANCELED\n"), bare.stdout), bare.stdout
    assert re.fullmatch(re.escape(f"! vertex: error: {down} (showing rows from ") + r"\d+s ago\)\n", bare.stderr)
    hidden = arrctl(tmp_path, "get", "vertex", "--status", "queued", ARRCTL_SANDBOX_FAULTS="vertex:status:503")
    assert hidden.returncode == 1 and hidden.stderr == ""
    lines = hidden.stdout.splitlines()
    assert len(lines) == 4 and re.fullmatch(r"Vertex AI custom jobs  \[error, \d+s old\]", lines[0])
    assert lines[1:3] == ["  (10 hidden by filters)", ""]  # the ten newest jobs, none queued
    assert re.fullmatch(re.escape(f"! vertex: error: {down} (showing rows from ") + r"\d+s ago\)", lines[3])


def problems(done: subprocess.CompletedProcess) -> set[tuple[str, str, str]]:
    verdict = orjson.loads(done.stdout)
    return {(p["kind"], p["source"], p["id"]) for p in verdict["problems"] if p["kind"].endswith("failure")}


def test_a_failure_a_check_filter_hid_is_paged_when_the_filter_is_removed(tmp_path: Path):
    first = arrctl(tmp_path, "check", "--format", "json", "--region", "us-central1")
    assert first.returncode == 2, first.stderr
    assert problems(first) == {("new_failure", "runner", "vertex-ai-launcher-t2v6b"),
                               ("new_failure", "vertex", "1428571428571428013")}
    assert re.search(r"; \d+ rows hidden by filters", orjson.loads(first.stdout)["summary"])
    # the hidden ones were not claimed: the next check without the filter pages them, and only them
    second = arrctl(tmp_path, "check", "--format", "json")
    assert second.returncode == 2
    # (p2t6v9jx is the W&B run of the job 1428571428571428013 the first check paged: W&B's failure is its own)
    assert problems(second) == {("new_failure", "vertex", "2857142857142856002"),
                                ("new_failure", "completed", "p2t6v9jx"), ("new_failure", "completed", "j1e5u8ot")}
    # ...and the failures older than the demo's 12 h window went into the baseline then, as on a first check
    # (lucid-dawn-43, 36 h ago, is no longer among the newest ten completed runs)
    assert "first check: 4 failures that ended over 12h00m ago recorded as seen" in orjson.loads(second.stdout)["summary"]
    assert problems(arrctl(tmp_path, "check", "--format", "json")) == set()
    # a fresh state directory pages the same five at once
    control = arrctl(tmp_path / "control", "check", "--format", "json")
    assert problems(control) == problems(first) | problems(second)


@pytest.fixture
def sandbox():
    """A fake cloud of its own: its builds move at 19 s, and the newest four finished ones change."""
    from arrctl.sandbox import Sandbox

    with Sandbox(read_env=False) as running:
        yield running


def check_builds(state: Path, sandbox, severity: str | None) -> subprocess.CompletedProcess:
    """A check of the builds alone (`--region global`) whose first window takes in every failure."""
    config = state.with_suffix(".toml")
    config.write_text('regions = ["us-central1"]\n[check]\nfirst_window_s = 31536000\n'
                      + (f'[builds]\nfailure_severity = "{severity}"\n' if severity else ""))
    return subprocess.run([ARRCTL, "--config", str(config), "--state-dir", str(state), "check", "--region", "global"],
                          capture_output=True, text=True, timeout=60, env={**env(), **sandbox.env()})


BUILD_FAILURES = ("builds 2b4d6f80-a1c3-4e5f-b7d9-0e2f4a6c8e62: Build timed out after 1200s; "
                  "builds 9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61: No matching distribution found for "
                  "arr-coc-kernels==0.4.2")  # the root error of its build log (issue 15), not the step's exit
QUEUED = "builds d3c2b1a0-9f8e-4d7c-a6b5-c4d3e2f1a065: queued for 15m (limit 10m)"


def test_a_failed_or_timed_out_build_is_a_warning_reported_once(tmp_path: Path, sandbox):
    first = check_builds(tmp_path / "warning", sandbox, None)
    assert first.returncode == 1, first.stdout + first.stderr
    assert re.fullmatch(re.escape(f"ARRCTL WARNING - 3 warnings: {BUILD_FAILURES}; {QUEUED}; ") + r"\d+ rows hidden "
                        r"by filters \| .*", first.stdout.splitlines()[0])
    assert first.stdout.splitlines()[1:3] == [
        "WARNING: builds 2b4d6f80-a1c3-4e5f-b7d9-0e2f4a6c8e62: Build timed out after 1200s",
        "WARNING: builds 9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61: No matching distribution found for "
        "arr-coc-kernels==0.4.2"]
    again = check_builds(tmp_path / "warning", sandbox, None)  # reported once, like failures
    assert again.stdout.startswith(f"ARRCTL WARNING - 1 warning: {QUEUED}; ")


def test_build_failures_can_be_critical(tmp_path: Path, sandbox):
    critical = check_builds(tmp_path / "critical", sandbox, "critical")
    assert critical.returncode == 2
    assert critical.stdout.startswith(f"ARRCTL CRITICAL - 2 new failures: {BUILD_FAILURES}; ")


def test_build_failures_can_be_ignored(tmp_path: Path, sandbox):
    ignored = check_builds(tmp_path / "ignore", sandbox, "ignore")
    assert ignored.returncode == 1 and ignored.stdout.startswith(f"ARRCTL WARNING - 1 warning: {QUEUED}; ")
    bad = check_builds(tmp_path / "bad", sandbox, "loud")
    assert bad.returncode == 3 and bad.stdout.startswith(
        f"ARRCTL UNKNOWN - {tmp_path / 'bad.toml'}: [builds] failure_severity: expected one of \"warning\", "
        '"critical", "ignore", got "loud" | ')


def test_filter_usage_errors_are_one_line():
    runner = CliRunner()
    bad = runner.invoke(cli, ["get", "--status", "bogus"])
    assert (bad.exit_code, bad.stdout) == (2, "")
    assert bad.stderr == ("arrctl: error: --status: 'bogus' is not a status (expected one or more of: queued, "
                          "pending, running, succeeded, failed, cancelled, timeout, unknown, comma separated)\n")
    since = runner.invoke(cli, ["watch", "--since", "5"])
    assert since.exit_code == 2 and since.stderr == (
        "arrctl: error: --since: '5' is not a duration (expected e.g. 90s, 30m, 2h, 3d or 1h30m)\n")
    check = runner.invoke(cli, ["check", "--since", "3x"])
    assert check.exit_code == 3
    assert check.stdout.startswith("ARRCTL UNKNOWN - --since: '3x' is not a duration")
    both = runner.invoke(cli, ["get", "--json", "-o", "wide"])
    assert both.exit_code == 2 and "--json and -o wide contradict each other" in both.stderr


def read_until(fd: int, wanted: bytes, timeout: float) -> bytes:
    """What a pty says until `wanted` appears (or the timeout)."""
    seen = b""
    end = time.monotonic() + timeout
    while wanted not in seen and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_watch_bell_rings_on_a_terminal_when_a_row_fails_and_never_in_a_pipe(tmp_path: Path):
    # the demo's runner execution vertex-ai-launcher-h4k8w fails at 12 s, a W&B run crashes at 14 s
    def start(name: str, stdout) -> subprocess.Popen:
        return subprocess.Popen([ARRCTL, "--demo", "--state-dir", str(tmp_path / name), "--no-color", "watch", "--bell",
                                 "--interval", "1", "--status", "failed"],
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL, env=env())

    primary, secondary = pty.openpty()
    on_tty = start("tty", secondary)
    os.close(secondary)
    piped = start("pipe", subprocess.PIPE)
    try:
        seen = read_until(primary, b"\a", 60)
        in_pipe = read_until(piped.stdout.fileno(), "RUNNING → FAILED".encode(), 60)
    finally:
        for process in (on_tty, piped):
            process.send_signal(signal.SIGINT)
            assert process.wait(10) == 130
        os.close(primary)
    # a signal is only recorded: what that refresh had left to write (a bell after its lines) is written first
    in_pipe += piped.stdout.read()
    text = seen.decode("utf-8", "replace")
    assert "\a" in text, text
    assert re.search(r"~ \S+ .*RUNNING → FAILED", text.split("\a")[0]), text  # after the line that shows it
    assert "RUNNING → FAILED".encode() in in_pipe and b"\a" not in in_pipe
