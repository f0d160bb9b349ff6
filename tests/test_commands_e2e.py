"""More commands as a user runs them: check beside watch, --output files, explain, completion, packaging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(90)


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    return {**out, **extra}


def run(state: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([ARRCTL, "--demo", "--state-dir", str(state), *args], capture_output=True, text=True,
                          timeout=60, env=env(**extra))


def test_check_beside_a_running_watch_sharing_the_state(tmp_path: Path):
    watch = subprocess.Popen([ARRCTL, "--demo", "--state-dir", str(tmp_path), "watch", "--json", "--interval", "0.5"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    try:
        assert watch.stdout.readline()  # watch is up and has written its first refresh
        codes = []
        for _ in range(3):
            done = run(tmp_path, "check", "--format", "json")
            verdict = orjson.loads(done.stdout)
            assert done.returncode == verdict["code"]
            assert "locked" not in done.stderr and "Traceback" not in done.stderr
            codes.append(verdict["code"])
        assert codes[0] == 2 and 2 not in codes[1:]  # the failures page once, beside the watch too
        assert watch.poll() is None
    finally:
        watch.terminate()
        assert watch.wait(5) == 143
    assert b"locked" not in watch.stderr.read()


def test_prom_output_file_is_written_atomically_and_parses(tmp_path: Path):
    target = tmp_path / "textfile" / "arrctl.prom"
    target.parent.mkdir()
    done = run(tmp_path, "check", "--format", "prom", "--output", str(target))
    assert done.stdout == "" and done.returncode in (1, 2)
    families = {f.name for f in text_string_to_metric_families(target.read_text())}
    assert {"arrctl_source_up", "arrctl_rows", "arrctl_new_failures", "arrctl_check_state"} <= families
    assert [p.name for p in target.parent.iterdir()] == ["arrctl.prom"]  # no temporary file left


def test_output_to_an_unwritable_place_is_one_line_unknown(tmp_path: Path):
    done = run(tmp_path, "check", "--output", str(tmp_path / "no" / "such" / "dir" / "x.prom"))
    assert done.returncode == 3
    assert done.stderr.startswith("arrctl: error: ") and "cannot write report" in done.stderr
    assert done.stderr.count("\n") == 1


def test_explain_an_execution_through_the_logs(tmp_path: Path):
    done = run(tmp_path, "explain", "vertex-ai-launcher-kbflt", "--json")
    assert done.returncode == 0, done.stderr
    obj = orjson.loads(done.stdout)
    assert (obj["verdict"], obj["rule"]) == ("failed", "gcp.machine_type")
    assert obj["message"] == 'InvalidArgument: 400 Machine type "a3-highgpu-1g" is not supported.'
    assert 0 < len(obj["context"]) <= 101
    text = run(tmp_path, "explain", "vertex-ai-launcher-q7m2x")
    assert text.stdout.splitlines()[0] == "SUCCEEDED: Completed: 3 jobs"


def test_explain_an_unknown_execution_says_it_was_not_found(tmp_path: Path):
    done = run(tmp_path, "explain", "vertex-ai-launcher-nosuch")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("arrctl: error: execution vertex-ai-launcher-nosuch not found: job vertex-ai-launcher "
                           "of project arr-demo has no such execution in any of its 18 regions\n")
    # its full resource name is accepted as well
    full = "projects/arr-demo/locations/europe-west2/jobs/vertex-ai-launcher/executions/vertex-ai-launcher-kbflt"
    found = run(tmp_path, "explain", full, "--json")
    assert found.returncode == 0 and orjson.loads(found.stdout)["verdict"] == "failed"


def test_explain_when_the_logs_cannot_be_read_says_so_once_with_cloud_runs_words(tmp_path: Path):
    done = run(tmp_path, "explain", "vertex-ai-launcher-kbflt", ARRCTL_SANDBOX_FAULTS="logging:status:503")
    assert done.returncode == 0 and done.stderr == ""
    head, note = done.stdout.splitlines()[:2]
    assert head.startswith("FAILED: ") and head.endswith("(Cloud Run's words)")
    assert note.startswith("note: logs of vertex-ai-launcher-kbflt not fully read: 503 Service Unavailable")
    assert done.stdout.count("vertex-ai-launcher-kbflt not fully read") == 1


@pytest.mark.parametrize("name", ['x" OR "y', "Vertex-AI", "a/b", "trailing-", "x" * 64, ""])
def test_explain_refuses_what_is_not_an_execution_name(tmp_path: Path, name: str):
    done = run(tmp_path, "explain", name)
    assert done.returncode == 2 and done.stdout == ""
    assert "is not a Cloud Run execution name" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o"), ("zsh", "compdef"), ("fish", "function _arrctl_completion")])
def test_shell_completion_scripts(shell: str, marker: str):
    done = subprocess.run([ARRCTL], capture_output=True, text=True, timeout=20,
                          env={**os.environ, "_ARRCTL_COMPLETE": f"{shell}_source"})
    assert done.returncode == 0 and marker in done.stdout


def test_completion_offers_commands():
    done = subprocess.run([ARRCTL], capture_output=True, text=True, timeout=20,
                          env={**os.environ, "_ARRCTL_COMPLETE": "bash_complete", "COMP_WORDS": "arrctl w",
                               "COMP_CWORD": "1"})
    assert "plain,watch" in done.stdout
