"""Memory belongs to what it came from (SPEC): project, runner job, W&B entity/project, endpoints.

Issue 12: after `get` against the sandbox (README's recipe, through ARRCTL_GCP_ENDPOINT), a `get` for a
real project without credentials showed the sandbox's executions as `[error, 0s old]`, and changing
`[runner] job` showed the old job's rows. Each refresh below fails on purpose; only memory of the
same scope may fill it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from arrctl.sandbox import Sandbox

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(120)
FAIL_AT_ONCE = "0.1"  # seconds: no worker imports its client library that fast, so the source times out


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(read_env=False) as running:
        yield running


def get(state: Path, sandbox: Sandbox | None, *args: str, config: Path | None = None,
        **extra: str) -> tuple[int, list[dict[str, Any]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_", "WANDB_", "GOOGLE_CLOUD"))}
    env["GOOGLE_APPLICATION_CREDENTIALS"] = os.environ["GOOGLE_APPLICATION_CREDENTIALS"]  # a missing file
    env["ARRCTL_KILL_GRACE"] = "0.1"
    if sandbox is not None:
        env.update(sandbox.env())
    else:  # the real services, as README's user has them: a project, no credentials
        env.update({"GOOGLE_CLOUD_PROJECT": "arr-demo", "WANDB_ENTITY": "arr-demo", "WANDB_PROJECT": "arr-coc-0-1"})
    env.update(extra)
    command = [ARRCTL, "--state-dir", str(state)] + (["--config", str(config)] if config else []) + ["get", *args]
    done = subprocess.run(command, capture_output=True, timeout=60, env=env)
    assert b"Traceback" not in done.stderr, done.stderr
    return done.returncode, [orjson.loads(line) for line in done.stdout.splitlines()]


def rows(records: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "row" and r["source"] == source]


def state(records: list[dict[str, Any]], source: str) -> dict[str, Any]:
    return next(r for r in records if r["type"] == "source" and r["source"] == source)


def test_rows_remembered_for_another_project_job_entity_or_endpoint_are_never_shown(sandbox: Sandbox,
                                                                                       tmp_path: Path):
    code, seen = get(tmp_path, sandbox, "runner", "vertex", "active", "--json")
    assert code == 0 and rows(seen, "runner") and rows(seen, "vertex") and rows(seen, "active")

    # the control: the same scope, failing, shows its memory, each row marked with its age
    code, same = get(tmp_path, sandbox, "vertex", "active", "--json", "--deadline", FAIL_AT_ONCE)
    assert code == 1 and state(same, "vertex")["state"] == "timeout"
    assert [r["id"] for r in rows(same, "vertex")] == [r["id"] for r in rows(seen, "vertex")]
    assert all(r["extra"]["stale_s"] >= 0 for r in rows(same, "vertex") + rows(same, "active"))

    # another project
    code, other = get(tmp_path, sandbox, "vertex", "--json", "--deadline", FAIL_AT_ONCE, GOOGLE_CLOUD_PROJECT="other")
    assert state(other, "vertex")["state"] == "timeout"
    assert rows(other, "vertex") == [] and state(other, "vertex")["stale_s"] is None

    # another runner job (the sandbox does not know it: the source fails)
    job = tmp_path / "job.toml"
    job.write_text('[runner]\njob = "another-job"\n')
    code, other = get(tmp_path, sandbox, "runner", "--json", config=job)
    assert state(other, "runner")["state"] == "error" and rows(other, "runner") == []

    # another W&B entity
    code, other = get(tmp_path, sandbox, "active", "--json", "--deadline", FAIL_AT_ONCE, WANDB_ENTITY="someone-else")
    assert state(other, "active")["state"] == "timeout" and rows(other, "active") == []

    # the real services for the same project and W&B names, without credentials
    code, real = get(tmp_path, None, "runner", "vertex", "--json")
    assert code == 1 and [state(real, s)["state"] for s in ("runner", "vertex")] == ["error", "error"]
    assert rows(real, "runner") == [] and rows(real, "vertex") == []
    text = subprocess.run([ARRCTL, "--state-dir", str(tmp_path), "get", "runner"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "GOOGLE_CLOUD_PROJECT": "arr-demo"})
    assert "vertex-ai-launcher-" not in text.stdout and "old]" not in text.stdout
