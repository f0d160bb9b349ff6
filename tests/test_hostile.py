"""Hostile remote text (issue 9.3): the `hostile` scenario through every output of the installed `arrctl`.

arrctl/sandbox/scenarios/hostile/ puts escape sequences (OSC title, clear screen, colours), NUL and
other C0/C1 controls, 100 KB lines and secrets (a W&B key, ya29. and Bearer tokens, a PEM
private key, password=) into execution logs, condition messages, build/job/run names and error
messages. Nothing raw may reach a terminal, every NDJSON line must stay valid JSON, every secret
must be replaced by [REDACTED], and nothing may crash.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ARRCTL = Path(sys.executable).with_name("arrctl")
SCRUBBED = ("ARRCTL_CONFIG", "ARRCTL_STATE_DIR", "ARRCTL_GCP_ENDPOINT", "WANDB_BASE_URL", "ARRCTL_SANDBOX_FAULTS",
            "GOOGLE_CLOUD_PROJECT", "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT")
FAILED_EXECUTION = "vertex-ai-launcher-h0st1"
# A distinctive piece of every secret in the fixtures: none may appear in any output.
SECRETS = {
    "W&B key": "0123456789abcdef0123",
    "ya29 token": "a0AfH6SMBxHostile",
    "Bearer token": "abcdefghijklmnopqrstuvwxyz123456",
    "PEM body": "MIIEvQIBADANBgkqhkiG9w0",
    "PEM body 2": "Zm9vYmFyYmF6cXV4aG9zdGlsZWtleW1hdGVyaWFs",
    "password": "hunter2hunter2",
    # the key arrctl holds (--demo's), bare in a log and in Vertex job specs' env (W&B Launch puts it there)
    "configured W&B key": "demo0000000000000000000000",
    "Bearer ya29 token": "c0HostileBearerToken",
    "URL-encoded Bearer token": "c0HostileEncodedToken",
}
# Raw bytes a terminal would act on: C0 controls except newline and tab, DEL, and C1 controls
# (U+0080-U+009F as UTF-8), plus the raw single bytes of 8-bit C1 that would not be UTF-8.
TERMINAL_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")
# Names and extra values (build triggers, Vertex display names, W&B tags) are remote text too:
# the worker cleans every string of a row before it is sent (arrctl/sanitize.py: clean_row).

# A log as a hostile container would write it: raw escapes, NUL, C1 bytes that are not UTF-8,
# invalid UTF-8, a 100 KB line and secrets, with the root error coloured and carrying a key.
FROM_FILE_LOG = b"\n".join([
    b"\x1b]0;pwned\x07\x1b[2JStarting W&B Launch agent (PID 42)\x00\x01",
    b"env: WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567",
    b"Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456",
    b"token ya29.a0AfH6SMBxHostileToken_9z refreshed",
    b"-----BEGIN PRIVATE KEY-----",
    b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7hostile",
    b"Zm9vYmFyYmF6cXV4aG9zdGlsZWtleW1hdGVyaWFs",
    b"-----END PRIVATE KEY-----",
    b"raw C1 \x9b31m and \x9d0;pwned\x9c, invalid UTF-8 \xff\xfe\xc3( end, password=hunter2hunter2",
    b"long " + b"B" * 100_000,
    b"Traceback (most recent call last):",
    b'  File "/app/launcher.py", line 88, in <module>',
    b"\x1b[31mRuntimeError: login failed WANDB_API_KEY=0123456789abcdef0123456789abcdef01234567 \x1b]0;x\x07"
    b"\x1b[2J(Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456)\x1b[0m",
    b"\xf0\x9f\x9a\xa8 FATAL ERROR DETECTED",
]) + b"\n"
EXPECTED_ROOT_ERROR = ("RuntimeError: login failed WANDB_API_KEY=[REDACTED] "
                       "(Authorization: Bearer [REDACTED])")

COMMANDS: dict[str, list[str]] = {
    "get": ["get"],
    "get-json": ["get", "--json"],
    "watch-json": ["watch", "--json", "--cycles", "2", "--interval", "0.2"],
    "check": ["check"],
    "explain": ["explain", FAILED_EXECUTION],
    "explain-json": ["explain", FAILED_EXECUTION, "--json"],
    "explain-file": ["explain", "--from-file", "LOGFILE"],
    "explain-stdin-json": ["explain", "--from-file", "-", "--json"],
    "logs": ["logs", FAILED_EXECUTION],
    "logs-follow": ["logs", "-f", "--poll", "0.5", FAILED_EXECUTION],
}
JSON_OUTPUTS = {"get-json", "watch-json", "explain-json", "explain-stdin-json"}
# Outputs that show build/job/run names (the leak above); the others must be clean already.
WITH_NAMES = {"get", "get-json", "watch-json"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(ARRCTL_SANDBOX_SCENARIO="hostile", ARRCTL_KILL_GRACE="0.1")
    return env


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[bytes]]:
    """Every command run once against the hostile scenario (three at a time, each its own state)."""
    root = tmp_path_factory.mktemp("hostile")
    log_file = root / "hostile.log"
    log_file.write_bytes(FROM_FILE_LOG)

    def run(name: str) -> subprocess.CompletedProcess[bytes]:
        args = [str(log_file) if a == "LOGFILE" else a for a in COMMANDS[name]]
        stdin = FROM_FILE_LOG if "-" in args else None
        return subprocess.run([str(ARRCTL), "--state-dir", str(root / name), "--demo", *args],
                              input=stdin, capture_output=True, env=_env(), timeout=50, check=False)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(COMMANDS, pool.map(run, COMMANDS)))


def _leaks(data: bytes) -> list[str]:
    return [label for label, secret in SECRETS.items() if secret.encode() in data]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", list(COMMANDS))
def test_nothing_crashes(outputs: dict[str, subprocess.CompletedProcess[bytes]], name: str) -> None:
    done = outputs[name]
    expected = {"check": 2, "logs-follow": 1}.get(name, 0)  # check: new failures are CRITICAL; logs -f: it failed
    assert (done.returncode, b"Traceback" in done.stderr) == (expected, False), done.stderr[-2000:]
    assert done.stdout.strip()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(set(COMMANDS) - JSON_OUTPUTS))
def test_no_terminal_control_reaches_stdout_or_stderr(outputs: dict[str, subprocess.CompletedProcess[bytes]],
                                                      name: str) -> None:
    done = outputs[name]
    for stream in (done.stdout, done.stderr):
        found = TERMINAL_CONTROL.search(stream)
        assert found is None, (name, stream[max(0, found.start() - 60):found.end() + 20] if found else b"")
        stream.decode("utf-8")  # no raw invalid UTF-8 either


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(JSON_OUTPUTS))
def test_every_ndjson_line_is_valid_json(outputs: dict[str, subprocess.CompletedProcess[bytes]], name: str) -> None:
    lines = outputs[name].stdout.splitlines()
    records = [orjson.loads(line) for line in lines]
    assert len(records) == len(lines) >= 1
    assert all(isinstance(r, dict) for r in records)
    # Controls inside strings are escaped (\u001b), never raw: only the newline ends a record.
    assert re.search(rb"[\x00-\x09\x0b-\x1f]", outputs[name].stdout) is None
    assert re.search(rb"[\x00-\x1f\x7f]", outputs[name].stderr) is None


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(set(COMMANDS) - WITH_NAMES))
def test_secrets_redacted(outputs: dict[str, subprocess.CompletedProcess[bytes]], name: str) -> None:
    done = outputs[name]
    assert _leaks(done.stdout + done.stderr) == []
    assert b"[REDACTED]" in done.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(WITH_NAMES))
def test_secrets_redacted_in_messages_and_errors(outputs: dict[str, subprocess.CompletedProcess[bytes]],
                                                 name: str) -> None:
    """Every field but the names (the known leak) is clean: messages, conditions, errors, ids."""
    done = outputs[name]
    assert _leaks(done.stderr) == []
    if name == "get":
        kept = [line for line in done.stdout.decode().splitlines() if "evil-" not in line]
        assert _leaks("\n".join(kept).encode()) == []
        return
    for line in done.stdout.splitlines():
        record = orjson.loads(line)
        row = record.get("row", record)
        for key in ("message", "error", "id", "region", "url", "raw_status"):
            assert _leaks(orjson.dumps(row.get(key))) == [], (key, row.get("id"))
        assert _leaks(orjson.dumps((row.get("extra") or {}).get("condition"))) == []
    assert b"[REDACTED]" in done.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["get-json", "watch-json"])
def test_names_are_redacted_and_printable(outputs: dict[str, subprocess.CompletedProcess[bytes]], name: str) -> None:
    done = outputs[name]
    assert _leaks(done.stdout) == []
    assert TERMINAL_CONTROL.search(done.stdout.replace(b"\n", b"")) is None


@pytest.mark.timeout(60)
def test_text_table_shows_names_with_their_keys_redacted(
        outputs: dict[str, subprocess.CompletedProcess[bytes]]) -> None:
    """A name carrying a key is shown redacted, not cut in the middle of the key."""
    text = outputs["get"].stdout.decode()
    assert "evil-WANDB_API_KEY=[REDACTED]" in text and "0123456789ab" not in text
    assert _leaks(outputs["get"].stdout) == []


@pytest.mark.timeout(60)
def test_root_error_is_found_and_redacted(outputs: dict[str, subprocess.CompletedProcess[bytes]]) -> None:
    from_sandbox = orjson.loads(outputs["explain-json"].stdout)
    assert (from_sandbox["verdict"], from_sandbox["rule"]) == ("failed", "python.exception")
    assert from_sandbox["message"] == ("RuntimeError: W&B login failed for WANDB_API_KEY=[REDACTED] "
                                       "(Authorization: Bearer [REDACTED], [REDACTED])")
    assert outputs["explain"].stdout.decode().splitlines()[0] == f"FAILED: {from_sandbox['message']}"
    from_stdin = orjson.loads(outputs["explain-stdin-json"].stdout)
    assert (from_stdin["verdict"], from_stdin["message"]) == ("failed", EXPECTED_ROOT_ERROR)
    # The private key is hidden line by line; the 100 KB line is cut, not dropped.
    context = from_stdin["context"]
    assert context[4:8] == ["[REDACTED]"] * 4
    long_line = next(line for line in context if line.startswith("long "))
    assert 100 < len(long_line) < 100_000
    rows = [orjson.loads(line) for line in outputs["get-json"].stdout.splitlines()]
    runner = {r["id"]: r["message"] for r in rows if r["type"] == "row" and r["source"] == "runner"}
    assert runner[FAILED_EXECUTION] == from_sandbox["message"]


@pytest.mark.timeout(60)
def test_check_first_line_is_clean(outputs: dict[str, subprocess.CompletedProcess[bytes]]) -> None:
    first = outputs["check"].stdout.decode().splitlines()[0]
    assert first.startswith("ARRCTL CRITICAL - ")
    assert "[REDACTED]" in first and _leaks(first.encode()) == []
