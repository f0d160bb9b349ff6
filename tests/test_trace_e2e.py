"""The installed `arrctl trace` (and rows' links) against the embedded fake cloud, through the real libraries."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(120)
ITEM = "UnVuUXVldWVJdGVtOjkwMjE0Mw=="  # what q7m2x's agent log says it received, and p2t6v9jx's config
JOB, RUN, EXECUTION = "1428571428571428013", "p2t6v9jx", "vertex-ai-launcher-q7m2x"
OOM = ("torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB. GPU 0 has a total capacty "
       "of 22.03 GiB of which 1.12 GiB is free. Of the allocated memory 19.87 GiB is allocated by PyTorch, and "
       "612.45 MiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try "
       "setting max_split_size_mb to avoid fragmentation.  See documentation for Memory Management and\u2026")  # p2t6v9jx's and its job's logs


def arrctl(state: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP"))}
    env.update(extra)
    return subprocess.run([ARRCTL, "--demo", "--state-dir", str(state), *args], capture_output=True, text=True,
                          timeout=100, env=env)


def hops(done: subprocess.CompletedProcess) -> tuple[list[tuple], dict]:
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [r["type"] for r in records[:-1]] == ["hop"] * (len(records) - 1), done.stdout
    return [(r["kind"], r["id"], r["status"], r["via"], r["from"]) for r in records[:-1]], records[-1]


CHAIN = [("queue_item", ITEM, "SUCCEEDED", "log", None),
         ("execution", EXECUTION, "SUCCEEDED", "log", ITEM),
         ("vertex_job", JOB, "FAILED", "log", EXECUTION),
         ("wandb_run", RUN, "FAILED", "label", JOB)]


def test_trace_from_each_kind_of_id_reaches_the_same_chain(tmp_path: Path):
    for target in (RUN, f"https://wandb.ai/arr-demo/arr-coc-0-1/runs/{RUN}", JOB, ITEM):
        done = arrctl(tmp_path, "trace", target, "--json")
        assert done.returncode == 0, (target, done.stderr)
        chain, closing = hops(done)
        assert chain == CHAIN, target
        assert closing == {"type": "trace", "complete": True, "unknown": []}
    done = arrctl(tmp_path, "trace", EXECUTION, "--json")  # it launched three jobs: this launch is one branch
    chain, _closing = hops(done)
    assert CHAIN[1][:4] in [h[:4] for h in chain] and CHAIN[2] in chain and CHAIN[3] in chain
    text = arrctl(tmp_path, "trace", RUN)
    assert text.returncode == 0 and text.stdout.splitlines()[0] == \
        f"queue item {ITEM}  SUCCEEDED  taken by {EXECUTION}  [its logs name it]"
    # trace reads no console or replica log: until `get` has, the hops say what W&B and Vertex say
    assert f"W&B run {RUN}  FAILED" in text.stdout and "run failed (no error recorded in its summary)" in text.stdout


def test_trace_shows_the_root_errors_get_read_from_the_jobs_and_runs_own_logs(tmp_path: Path):
    assert arrctl(tmp_path, "get", "vertex", "completed").returncode == 0  # reads and remembers them (issue 15)
    done = arrctl(tmp_path, "trace", RUN, "--json")
    chain, closing = hops(done)
    assert chain == CHAIN and closing["complete"]
    records = [orjson.loads(line) for line in done.stdout.splitlines()[2:4]]
    assert [(r["kind"], r["message"], r["category"]) for r in records] == [
        ("vertex_job", f"workerpool0-0: {OOM}", "oom"), ("wandb_run", OOM, "oom")]


def test_a_hop_behind_a_hung_source_is_unknown_within_the_deadline(tmp_path: Path):
    # the deadline leaves the other systems room to answer on a loaded machine; Vertex never does
    done = arrctl(tmp_path, "trace", RUN, "--json", "--deadline", "15", ARRCTL_SANDBOX_FAULTS="vertex:hang")
    assert done.returncode == 1, done.stderr
    chain, closing = hops(done)
    assert [(kind, id_, status) for kind, id_, status, _via, _from in chain] == [
        ("queue_item", ITEM, "SUCCEEDED"), ("execution", EXECUTION, "SUCCEEDED"),
        ("vertex_job", None, "UNKNOWN"), ("wandb_run", RUN, "FAILED")]
    record = orjson.loads(done.stdout.splitlines()[2])
    # each region's read gives up at 0.8 of the deadline, or later for a region whose read started late on a
    # loaded machine (`...: no answer within 12s; asia-northeast1, asia-southeast1: no answer within 14.5s`);
    # should the worker start late, the kill at 15 s comes first
    assert re.fullmatch(r"vertex timeout: (?:no answer within 15s|18 of 18 regions failed: us-central1, us-east1 "
                        r"and \d+ more: no answer within 12s(?:; [\w, -]+: no answer within [\d.]+s)*)",
                        record["message"]), record["message"]
    assert closing == {"type": "trace", "complete": False, "unknown": ["vertex_job"]}


def test_rows_carry_their_links_so_jq_can_join_them(tmp_path: Path):
    done = arrctl(tmp_path, "get", "runner", "vertex", "completed", "--json")
    assert done.returncode == 0, done.stderr
    rows = {(r["source"], r["id"]): r for r in map(orjson.loads, done.stdout.splitlines()) if r["type"] == "row"}
    assert rows[("runner", EXECUTION)]["links"] == {
        "vertex_jobs": ["1428571428571428011", JOB, "1428571428571428012"],
        "queue_items": ["UnVuUXVldWVJdGVtOjkwMjE0MQ==", ITEM, "UnVuUXVldWVJdGVtOjkwMjE0Mg=="]}
    assert rows[("vertex", JOB)]["links"] == {"wandb_run": RUN, "queue_item": ITEM}
    assert rows[("completed", RUN)]["links"] == {"queue_item": ITEM, "vertex_job": JOB}
    assert all(isinstance(r["links"], dict) for r in rows.values())
    again = arrctl(tmp_path, "get", "runner", "--json")  # its logs are not read again: the links are remembered
    rows = {r["id"]: r for r in map(orjson.loads, again.stdout.splitlines()) if r["type"] == "row"}
    assert rows[EXECUTION]["links"]["vertex_jobs"] == ["1428571428571428011", JOB, "1428571428571428012"]


def test_an_id_that_names_no_hop_is_a_usage_error(tmp_path: Path):
    done = arrctl(tmp_path, "trace", "not an id")
    assert done.returncode == 2 and done.stdout == ""
    assert "ID|URL 'not an id': expected a queue item id, an execution name" in done.stderr
    assert "Traceback" not in done.stderr
