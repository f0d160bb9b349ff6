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
    head, item, note = done.stdout.splitlines()[:3]
    assert head.startswith("FAILED: ") and head.endswith("(Cloud Run's words)")
    assert item == "item: execution vertex-ai-launcher-kbflt of job vertex-ai-launcher"
    assert note.startswith("note: logs of vertex-ai-launcher-kbflt not fully read: 503 Service Unavailable")
    assert done.stdout.count("vertex-ai-launcher-kbflt not fully read") == 1


@pytest.mark.parametrize("name", ['x" OR "y', "Vertex-AI", "a/b", "trailing-", "x" * 64, ""])
def test_explain_refuses_what_names_no_kind_of_item(tmp_path: Path, name: str):
    done = run(tmp_path, "explain", name)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"arrctl: error: ID {name!r} names nothing arrctl can explain: expected a Cloud Run "
                           "execution name (vertex-ai-launcher-x7k2p), a Vertex AI job id or console URL, a build id "
                           "(UUID) or console URL, a W&B run id, ENTITY/PROJECT/ID or run URL\n")


def test_explain_refuses_a_url_of_another_kind(tmp_path: Path):
    done = run(tmp_path, "explain", "https://console.cloud.google.com/run/jobs?project=arr-demo")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == ("arrctl: error: URL 'https://console.cloud.google.com/run/jobs?project=arr-demo' is not one "
                           "arrctl can explain: expected an execution's, a Vertex AI job's or a build's Google Cloud console URL, or a "
                           "W&B run URL (https://wandb.ai/ENTITY/PROJECT/runs/ID)\n")


RUN_OOM = ("torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB. GPU 0 has a total "
           "capacty of 22.03 GiB of which 1.12 GiB is free. Of the allocated memory 19.87 GiB is allocated by "
           "PyTorch, and 612.45 MiB is reserved by PyTorch but unallocated. If reserved but unallocated memory "
           "is large try setting max_split_size_mb to avoid fragmentation.  See documentation for Memory "
           "Management and\u2026")
VERTEX_OOM = "workerpool0-0: " + RUN_OOM  # the same words as its W&B run's console log
BUILD = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c61"


@pytest.mark.parametrize("item, head", [
    # a Vertex AI job: its id (found in us-central1 among 18 regions), its console URL
    ("1428571428571428013", ["FAILED: " + VERTEX_OOM, "item: Vertex AI job 1428571428571428013 in us-central1",
                             "category: oom", "rule: memory.cuda_oom (line 23)"]),
    ("https://console.cloud.google.com/vertex-ai/locations/us-central1/training/1428571428571428013/cpu?project=arr-demo",
     ["FAILED: " + VERTEX_OOM, "item: Vertex AI job 1428571428571428013 in us-central1"]),
    # a W&B run: its bare id, entity/project/id, its URL — the same OOM as its Vertex job
    ("p2t6v9jx", ["FAILED: " + RUN_OOM, "item: W&B run p2t6v9jx in arr-demo/arr-coc-0-1", "category: oom",
                  "rule: memory.cuda_oom (line 31)"]),
    ("arr-demo/arr-coc-0-1/p2t6v9jx", ["FAILED: " + RUN_OOM, "item: W&B run p2t6v9jx in arr-demo/arr-coc-0-1"]),
    ("https://wandb.ai/arr-demo/arr-coc-0-1/runs/j1e5u8ot/logs",
     ["FAILED: socketStartConnect: Connect to 10.128.0.42<41877> failed : Software caused connection abort",
      "item: W&B run j1e5u8ot in arr-demo/arr-coc-0-1", "category: distributed", "rule: intro.nccl_last_error (line 23)"]),
    # a W&B run without a console log: W&B's own words, said so
    ("arr-demo/arr-coc-0-1/f3r6j2nb", None),
    # a build: its id, its console URL (as the API's logUrl gives it, with the project number)
    (BUILD, ["FAILED: No matching distribution found for arr-coc-kernels==0.4.2", f"item: build {BUILD} in global",
             "category: dependency", "rule: python.pip (line 36)"]),
    (f"https://console.cloud.google.com/cloud-build/builds;region=global/{BUILD}?project=123456789012",
     ["FAILED: No matching distribution found for arr-coc-kernels==0.4.2", f"item: build {BUILD} in global"]),
    # a runner execution, as before
    ("vertex-ai-launcher-kbflt", ['FAILED: InvalidArgument: 400 Machine type "a3-highgpu-1g" is not supported.',
                                  "item: execution vertex-ai-launcher-kbflt of job vertex-ai-launcher",
                                  "category: invalid_config", "rule: gcp.machine_type (line 37)"]),
])
def test_explain_finds_every_kind_of_item_and_reads_its_own_logs(tmp_path: Path, item: str, head: list[str] | None):
    done = run(tmp_path, "explain", item)
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    if head is None:
        assert lines[0].startswith("FAILED: run crashed: no heartbeat since ") and lines[0].endswith("Z (W&B's words)")
        assert lines[1:4] == ["item: W&B run f3r6j2nb in arr-demo/arr-coc-0-1",
                              "note: run f3r6j2nb has no console log (output.log)", "category: unknown"]
        return
    assert lines[:len(head)] == head
    if len(head) > 3:  # the context lines around the error, the error marked
        number = int(head[3].rsplit("line ", 1)[1].rstrip(")"))
        assert any(line.lstrip().startswith(f"{number} > ") for line in lines)


def test_explain_json_is_specs_object_for_a_w_and_b_run(tmp_path: Path):
    done = run(tmp_path, "explain", "https://wandb.ai/arr-demo/arr-coc-0-1/runs/p2t6v9jx", "--json")
    assert done.returncode == 0
    obj = orjson.loads(done.stdout)
    assert list(obj) == ["verdict", "message", "category", "rule", "line", "jobs", "context"]
    assert (obj["verdict"], obj["message"], obj["category"], obj["rule"], obj["line"], obj["jobs"]) == (
        "failed", RUN_OOM, "oom", "memory.cuda_oom", 31, None)
    assert obj["context"][0].startswith("epoch 1/12:  24%") and len(obj["context"]) == 33  # lines 11-43: 20 before
    assert obj["context"][-1] == "wandb: Find logs at: ./wandb/run-20261118_080512-p2t6v9jx/logs"


@pytest.mark.parametrize("item, error", [
    ("1428571428571428999", "Vertex AI job 1428571428571428999 not found in project arr-demo, any of its 18 regions"),
    ("arr-demo/arr-coc-0-1/nosuchx1", "W&B run nosuchx1 not found in arr-demo/arr-coc-0-1"),
    ("nosuchx1", "execution nosuchx1 not found: job vertex-ai-launcher of project arr-demo has no such execution in "
                 "any of its 18 regions; W&B run nosuchx1 not found in arr-demo/arr-coc-0-1"),
    ("00000000-0000-4000-8000-000000000000", "build 00000000-0000-4000-8000-000000000000 not found in project "
                                             "arr-demo (global and any of its 18 regions)"),
])
def test_explain_of_an_item_found_nowhere_says_where_it_looked(tmp_path: Path, item: str, error: str):
    done = run(tmp_path, "explain", item)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", f"arrctl: error: {error}\n")


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
