"""The command line: usage and configuration errors, start-up cost, output hygiene."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
from click.testing import CliRunner

from arrctl.cli import cli

ARRCTL = str(Path(sys.executable).with_name("arrctl"))


def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def test_help_imports_no_cloud_library():
    code = ("import sys\nfrom arrctl.cli import main\nsys.argv = ['arrctl', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('wandb', 'grpc', 'multiprocess')\n"
            "               or (m.startswith('google.') and m != 'google.cloud'))  # bare namespaces come from .pth files\n"
            "print('HEAVY', heavy, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert "HEAVY []" in done.stderr, done.stderr


def test_every_command_has_help_with_an_example():
    for command in ("get", "watch", "check", "explain", "launch", "sandbox"):
        result = invoke(command, "--help")
        assert result.exit_code == 0
    for command in ("get", "watch", "check", "explain", "launch"):
        assert "Example" in invoke(command, "--help").output, command


def test_unknown_source_is_a_usage_error():
    result = invoke("get", "runner", "vertx")
    assert result.exit_code == 2
    assert "unknown source 'vertx' (expected one or more of: runner, builds, vertex, active, completed)" in result.output


def test_bad_config_is_one_line_exit_2_for_get_and_3_for_check(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text("[runner]\nlimit = 'five'\n")
    result = invoke("--config", str(config), "--state-dir", str(tmp_path / "s"), "get")
    assert result.exit_code == 2
    assert result.stderr == f"arrctl: error: {config}: [runner] limit: expected a whole number of at least 1, got \"five\"\n"
    check = invoke("--config", str(config), "--state-dir", str(tmp_path / "s"), "check")
    assert check.exit_code == 3
    assert check.output.startswith(f"ARRCTL UNKNOWN - {config}: [runner] limit: expected")


def test_missing_project_names_the_fix(tmp_path: Path):
    result = invoke("--state-dir", str(tmp_path / "s"), "get", "runner")
    assert result.exit_code == 2
    assert "no Google Cloud project configured" in result.stderr and "--demo" in result.stderr
    assert result.stdout == ""


def test_check_json_unknown_has_spec_keys(tmp_path: Path):
    result = invoke("--state-dir", str(tmp_path / "s"), "check", "--format", "json")
    assert result.exit_code == 3
    obj = orjson.loads(result.stdout)
    assert list(obj) == ["state", "code", "summary", "problems", "sources"] and obj["state"] == "UNKNOWN"


def test_a_missing_key_file_is_a_source_error_naming_the_file(tmp_path: Path):
    env = {"GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent.json"}
    result = invoke("--state-dir", str(tmp_path / "s"), "get", "runner", "--json", env=env)
    assert result.exit_code == 1
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert records == [{"type": "source", "source": "runner", "state": "error", "rows": 0,
                        "took_s": records[0]["took_s"], "stale_s": None,
                        "error": "Google credentials: File /nonexistent.json was not found "
                                 "(set by GOOGLE_APPLICATION_CREDENTIALS)"}]


def test_a_malformed_key_file_is_one_line_on_stderr_too(tmp_path: Path):
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account", "project_id": "p"}')
    env = {"GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_APPLICATION_CREDENTIALS": str(key)}
    result = invoke("--state-dir", str(tmp_path / "s"), "get", "vertex", env=env)
    assert result.exit_code == 1
    note = [line for line in result.stdout.splitlines() if line.startswith("! vertex")]
    assert len(note) == 1
    assert note[0].startswith(f"! vertex: error: Google credentials: Failed to load service account credentials "
                              f"from {key}: Service account info was not in the expected format, missing fields ")
    assert note[0].endswith("(set by GOOGLE_APPLICATION_CREDENTIALS) (no earlier rows to show)")
    assert "client_email" in note[0] and "token_uri" in note[0]
    assert "Traceback" not in result.output


def test_explain_needs_exactly_one_input():
    assert invoke("explain").exit_code == 2
    assert invoke("explain", "x", "--from-file", "-", input="").exit_code == 2


def test_explain_from_stdin_json(tmp_path: Path):
    log = "starting\nwandb: launch: agent polling on queues\nRuns: 3\n"
    result = invoke("explain", "--from-file", "-", "--json", input=log)
    assert result.exit_code == 0
    obj = orjson.loads(result.output)
    assert list(obj) == ["verdict", "message", "category", "rule", "line", "jobs", "context"]  # SPEC
    assert (obj["verdict"], obj["message"], obj["jobs"]) == ("succeeded", "Completed: 3 jobs", 3)


def test_explain_reads_an_export_of_log_entries_as_their_lines(tmp_path: Path):
    # `gcloud logging read --format=json` writes a JSON array, newest first
    entries = [{"textPayload": "Memory limit of 512 MiB exceeded with 530 MiB used.", "severity": "ERROR",
                "timestamp": "2026-12-03T10:00:02Z"},
               {"textPayload": "epoch 1 loss=0.3", "severity": "INFO", "timestamp": "2026-12-03T10:00:01Z"}]
    (tmp_path / "x.json").write_text(orjson.dumps(entries, option=orjson.OPT_INDENT_2).decode())
    obj = orjson.loads(invoke("explain", "--from-file", str(tmp_path / "x.json"), "--json").output)
    assert (obj["message"], obj["category"], obj["line"]) == (
        "Memory limit of 512 MiB exceeded with 530 MiB used.", "oom", 2)
    assert obj["context"] == ["epoch 1 loss=0.3", "Memory limit of 512 MiB exceeded with 530 MiB used."]


def test_explain_missing_file_is_a_usage_error(tmp_path: Path):
    result = invoke("explain", "--from-file", str(tmp_path / "nope.log"))
    assert result.exit_code == 2 and "nope.log" in result.output


def test_installed_command_prints_version():
    done = subprocess.run([ARRCTL, "--version"], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0 and done.stdout.startswith("arrctl, version ")


def test_check_usage_errors_are_unknown_exit_3(tmp_path: Path):
    assert invoke("check", "--format", "xml").exit_code == 3
    result = invoke("--config", str(tmp_path), "--state-dir", str(tmp_path / "s"), "check")
    assert result.exit_code == 3 and "cannot read config file" in result.output


def test_wandb_not_configured_fails_its_sources_only_and_check_says_unknown(tmp_path: Path):
    result = invoke("--state-dir", str(tmp_path / "s"), "get", "active", "--json")
    assert result.exit_code == 1
    record = orjson.loads(result.stdout)
    assert (record["state"], record["error"]) == (
        "error", "W&B entity/project not configured: set [wandb] entity and project, or WANDB_ENTITY/WANDB_PROJECT")
    check = invoke("--state-dir", str(tmp_path / "s"), "check", env={"GOOGLE_CLOUD_PROJECT": "p"})
    assert check.exit_code == 3 and "not configured" in check.stdout.splitlines()[0]


def test_a_missing_wandb_key_is_a_credentials_problem_for_check(tmp_path: Path):
    """Made as a credentials error (kinds.ErrorKind), so check cannot judge: UNKNOWN, naming it."""
    env = {"GOOGLE_CLOUD_PROJECT": "p", "WANDB_ENTITY": "e", "WANDB_PROJECT": "w"}
    check = invoke("--state-dir", str(tmp_path / "s"), "check", env=env)
    assert check.exit_code == 3
    assert "active error: W&B API key not set: export WANDB_API_KEY (or use --demo)" in check.stdout.splitlines()[0]


def test_nan_and_bad_grace_are_usage_errors():
    assert invoke("watch", "--interval", "nan").exit_code == 2
    assert invoke("get", "--deadline", "nan").exit_code == 2
    assert invoke("launch", "--timeout", "nan").exit_code == 2
    assert invoke("get", env={"ARRCTL_KILL_GRACE": "inf"}).exit_code == 2


def test_closed_stdout_fd_ends_quietly_and_a_full_disk_is_one_line(tmp_path: Path):
    closed = subprocess.run(f"'{ARRCTL}' --state-dir '{tmp_path}' get runner >&-", shell=True, capture_output=True,
                            text=True, timeout=30, env={**os.environ, "GOOGLE_CLOUD_PROJECT": "p"})
    assert closed.returncode == 0 and "internal error" not in closed.stderr
    full = subprocess.run(f"'{ARRCTL}' explain --from-file - > /dev/full", shell=True, input="Runs: 2\n",
                          capture_output=True, text=True, timeout=30)
    assert full.returncode == 1
    assert full.stderr == "arrctl: error: cannot write to stdout: No space left on device\n"


def test_durations_are_bounded():
    assert invoke("get", "--deadline", "inf").exit_code == 2
    assert invoke("watch", "--interval", "1e9").exit_code == 2


def test_the_users_own_wandb_key_is_masked_wherever_it_appears(tmp_path: Path):
    key = "5eC7e7" + "ab" * 17  # 40 characters, as W&B keys are
    log = (f"agent starting with {key}\n"
           f"Traceback (most recent call last):\nRuntimeError: could not log in as {key} (Bearer ya29.c0tok_9)\n")
    env = {**os.environ, "WANDB_API_KEY": key}
    for args in (["explain", "--from-file", "-"], ["explain", "--from-file", "-", "--json"]):
        done = subprocess.run([ARRCTL, *args], input=log, capture_output=True, text=True, env=env, timeout=30)
        assert done.returncode == 0, done.stderr
        assert key not in done.stdout + done.stderr and "c0tok_9" not in done.stdout
        assert "could not log in as [REDACTED] (Bearer [REDACTED])" in done.stdout


def test_an_empty_state_dir_is_a_usage_error_not_the_current_directory(tmp_path: Path):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        got = invoke("--state-dir", "", "get", "builds", env={"GOOGLE_CLOUD_PROJECT": "p"})
        checked = invoke("--state-dir", "", "check")
    finally:
        os.chdir(cwd)
    assert got.exit_code == 2 and "--state-dir: expected a directory path, got an empty string" in got.output
    assert checked.exit_code == 3 and checked.stdout.startswith("ARRCTL UNKNOWN - --state-dir: expected a directory")
    assert list(tmp_path.iterdir()) == []  # no state.sqlite3 in the current directory


def test_a_file_named_demo_in_the_state_directory_is_not_a_directory(tmp_path: Path):
    (tmp_path / "demo").write_text("x")
    done = subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path), "get", "builds"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr == (f"arrctl: warning: state directory {tmp_path / 'demo'} is unusable (Not a directory); "
                           "running without persistence\n")
