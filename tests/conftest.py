"""Shared test helpers: process inspection through /proc, bounded polling."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pickle
import select
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import pytest


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (read from /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live (not zombie) process, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    return parents


def children_of(pid: int) -> list[int]:
    """Live direct children of a process."""
    return [child for child, parent in _parents().items() if parent == pid]


def descendants(pid: int) -> list[int]:
    """Every live process whose ancestry leads to `pid`."""
    parents = _parents()
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == current]
        found += kids
        frontier += kids
    return found


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll `predicate` until it is true or `timeout` passes; return its last value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A private state directory for one test."""
    return tmp_path / "state"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's config or state, or real credentials."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    for var in ("ARRCTL_CONFIG", "ARRCTL_STATE_DIR", "GOOGLE_CLOUD_PROJECT", "WANDB_API_KEY", "WANDB_ENTITY",
                "WANDB_PROJECT", "ARRCTL_GCP_ENDPOINT", "WANDB_BASE_URL", "ARRCTL_SANDBOX_FAULTS", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-credentials.json"))
    monkeypatch.setenv("ARRCTL_KILL_GRACE", "0.1")
    os.environ.setdefault("ARRCTL_TESTING", "1")


def load_bench(name: str) -> Any:
    """A module of bench/ (bench and tests judge with the same code), loaded by its path."""
    path = Path(__file__).resolve().parent.parent / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"arrctl_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def in_child(func: Callable[..., Any], *args: Any, timeout: float = 20.0) -> Any:
    """Run func in a forked child (own process group, like a worker); return its result or raise."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.setpgid(0, 0)
            os.close(read_fd)
            try:
                payload = ("ok", func(*args))
            except BaseException as exc:  # noqa: BLE001 — carried to the parent
                payload = ("error", (type(exc).__name__, str(exc), traceback.format_exc()))
            data = pickle.dumps(payload)
            while data:
                data = data[os.write(write_fd, data):]
        finally:
            os._exit(0)
    os.close(write_fd)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([read_fd], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError(f"child took longer than {timeout} s")
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # the child and the wandb-core it started
        os.waitpid(pid, 0)
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "error":
        raise RuntimeError(f"{value[0]}: {value[1]}\n{value[2]}")
    return value


@pytest.fixture
def make_sandbox():
    """Start in-process sandboxes of the default scenario (`faults`, scenario time `t`); all stopped
    after the test. (tests/test_sources_gcp.py has its own, taking a scenario.)"""
    from arrctl.sandbox.faults import parse_faults
    from arrctl.sandbox.clock import ManualClock
    from arrctl.sandbox.server import SandboxServer

    started = []

    def make(faults=(), t: float = 0.0) -> SandboxServer:
        clock = ManualClock(now=time.time())
        clock.set(t)
        started.append(SandboxServer("default", faults=parse_faults(faults), clock=clock).start())
        return started[-1]

    yield make
    for server in started:
        server.stop()


def log_requests(server: Any) -> int:
    """How many Cloud Logging requests the sandbox has answered."""
    import json
    import urllib.request

    with urllib.request.urlopen(server.url + "/_sandbox/stats", timeout=5) as answer:
        return json.loads(answer.read())["requests"]["logging"]
