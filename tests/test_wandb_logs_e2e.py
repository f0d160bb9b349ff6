"""W&B runs' console logs through the installed `arrctl get`: read once ever, across processes (issue 15)."""

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


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(read_env=False) as running:
        yield running


def get(state: Path, sandbox: Sandbox, *args: str) -> tuple[int, list[dict[str, Any]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARRCTL_", "WANDB_", "GOOGLE_CLOUD"))}
    env.update(sandbox.env())
    done = subprocess.run([ARRCTL, "--state-dir", str(state), "get", *args], capture_output=True, timeout=60, env=env)
    assert b"Traceback" not in done.stderr, done.stderr
    return done.returncode, [orjson.loads(line) for line in done.stdout.splitlines()]


def file_reads(sandbox: Sandbox) -> tuple[int, int]:
    """(RunFiles queries, storage downloads) the fake has answered so far."""
    seen = sandbox.stats()["operations"]["wandb"]
    return seen.get("RunFiles", 0), seen.get("download", 0)


def failed(records: list[dict[str, Any]]) -> dict[str, tuple[str, str, str | None]]:
    return {r["id"]: (r["message"], r["category"], r["extra"]["api_message"])
            for r in records if r["type"] == "row" and r["status"] == "FAILED"}


OOM = ("torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.70 GiB. GPU 0 has a total capacty "
       "of 22.03 GiB of which 1.12 GiB is free. Of the allocated memory 19.87 GiB is allocated by PyTorch, and "
       "612.45 MiB is reserved by PyTorch but unallocated. If reserved but unallocated memory is large try "
       "setting max_split_size_mb to avoid fragmentation.  See documentation for Memory Management and\u2026")
NCCL = "socketStartConnect: Connect to 10.128.0.42<41877> failed : Software caused connection abort"
NOT_FOUND = "FileNotFoundError: [Errno 2] No such file or directory: 'gs://arr-demo-data/coc/train-00000.parquet'"
EXPECTED = {
    "p2t6v9jx": (OOM, "oom", "run failed (no error recorded in its summary)"),
    "j1e5u8ot": (NCCL, "distributed", "NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled system error, "
                                      "NCCL version 2.21.5"),
    "h0q4z7lx": (NOT_FOUND, "not_found", NOT_FOUND),
}


def test_a_failed_runs_console_log_is_read_once_ever(sandbox: Sandbox, tmp_path: Path):
    before = file_reads(sandbox)
    code, first = get(tmp_path, sandbox, "completed", "--json")
    assert code == 0
    reads = file_reads(sandbox)
    # 5 failed runs; f3r6j2nb and s4d8f2gh (crashed while its Vertex job runs) have no output.log
    assert (reads[0] - before[0], reads[1] - before[1]) == (5, 3)

    def crashed_without_log(run: str) -> tuple[str, str, str]:
        words = "run crashed: no heartbeat since " + next(r["finished"] for r in first if r.get("id") == run)
        return words, "unknown", words
    assert failed(first) == {**EXPECTED, "f3r6j2nb": crashed_without_log("f3r6j2nb"),
                             "s4d8f2gh": crashed_without_log("s4d8f2gh")}
    code, second = get(tmp_path, sandbox, "completed", "--json")  # another process: the store remembers
    assert code == 0
    # only a run that crashed meanwhile (r8f2w6ny, 14 s into the scenario) is read; the others never again
    new = set(failed(second)) - set(failed(first))
    kept = set(failed(second)) & set(failed(first))  # (a newer run pushes the oldest out of the newest 10)
    assert new <= {"r8f2w6ny"} and {k: failed(second)[k] for k in kept} == {k: failed(first)[k] for k in kept}
    again = file_reads(sandbox)
    assert (again[0] - reads[0], again[1] - reads[1]) == (len(new), len(new))
    code, third = get(tmp_path, sandbox, "completed", "--json")
    assert code == 0 and file_reads(sandbox) == again  # steady state: no file query, no download
    assert failed(third) == failed(second)
    assert not any(r["extra"].get("logs_unread") for r in third if r["type"] == "row")
