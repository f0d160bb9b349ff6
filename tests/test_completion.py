"""Shell completion through click's `_ARRCTL_COMPLETE` protocol: sources, statuses, scenarios, remembered ids."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from arrctl.cli import cli

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(60)


def complete(words: str, shell: str = "bash") -> list[str]:
    """What the shell would be offered for the last of `words` (bash: `plain,VALUE` lines)."""
    parts = words.split(" ")
    result = CliRunner().invoke(cli, [], prog_name="arrctl", env={
        "_ARRCTL_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)})
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    if shell == "bash":
        return [line.split(",", 1)[1] for line in result.output.splitlines() if line]
    return result.output.splitlines()


def test_sources_complete_for_get_and_watch():
    assert complete("arrctl get ") == ["runner", "builds", "vertex", "active", "completed"]
    assert complete("arrctl watch a") == ["active"]
    assert complete("arrctl get runner,v") == ["runner,vertex"]


def test_statuses_complete_in_the_case_typed_and_in_comma_lists():
    assert complete("arrctl get --status ") == [
        "queued", "pending", "running", "succeeded", "failed", "cancelled", "timeout", "unknown"]
    assert complete("arrctl check --status F") == ["FAILED"]
    assert complete("arrctl watch --status failed,t") == ["failed,timeout"]
    assert complete("arrctl get --status failed,f") == []  # failed is given already


def test_scenario_names_complete():
    assert complete("arrctl sandbox serve --scenario launch-") == [
        "launch-crowded", "launch-exec-fails", "launch-fatal-log", "launch-idle", "launch-stuck",
        "launch-vertex-fails"]


def test_ids_come_from_the_last_refresh_in_this_state_directory(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    done = subprocess.run([ARRCTL, "--demo", "--state-dir", str(tmp_path), "get", "runner", "vertex", "--json"],
                          capture_output=True, text=True, timeout=60, env=env)
    rows = [r for r in map(orjson.loads, done.stdout.splitlines()) if r["type"] == "row"]
    runner = [r["id"] for r in rows if r["source"] == "runner"]
    assert len(runner) == 5
    assert complete(f"arrctl --demo --state-dir {tmp_path} explain vertex-ai-launcher-") == runner
    zsh = complete(f"arrctl --demo --state-dir {tmp_path} explain {runner[-1]}", shell="zsh")
    failed = next(r for r in rows if r["id"] == runner[-1])
    assert zsh == ["plain", runner[-1], f"runner {failed['status']}"]  # the job's name is no news
    # --name offers ids and names
    offered = complete(f"arrctl --demo --state-dir {tmp_path} get --name arr-coc-train-p")
    assert offered == ["arr-coc-train-p6z3k9mh", "arr-coc-train-p2t6v9jx"]
    # another memory (not --demo) has nothing remembered
    assert complete(f"arrctl --state-dir {tmp_path} explain vertex-ai-launcher-") == []


def test_no_store_or_a_damaged_one_offers_nothing_and_changes_nothing(tmp_path: Path):
    missing = tmp_path / "missing"
    assert complete(f"arrctl --demo --state-dir {missing} explain v") == []
    assert not missing.exists()
    damaged = tmp_path / "damaged" / "demo"
    damaged.mkdir(parents=True)
    (damaged / "state.sqlite3").write_bytes(b"not a database" * 100)
    assert complete(f"arrctl --demo --state-dir {damaged.parent} explain v") == []
    assert (damaged / "state.sqlite3").read_bytes() == b"not a database" * 100
    assert sorted(p.name for p in damaged.iterdir()) == ["state.sqlite3"]
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text("[runner]\nlimit = 'x'\n")
    assert complete(f"arrctl --config {bad_config} --state-dir {tmp_path} explain v") == []
