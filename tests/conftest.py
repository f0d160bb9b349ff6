"""Shared test helpers: process inspection through /proc, bounded polling."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import pytest


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (read from /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    """Live direct children of a process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
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
