"""The operating system as the supervisor uses it: fork, pipes, selectors, signals, waits, the clock.

Every OS call of a refresh's lifecycle goes through one `System` (supervisor's `options`,
honcho's `_procmgr`), so the lifecycle logic — SIGTERM at the deadline, SIGKILL after the grace,
always reaped — is tested with a fake system in virtual time, without forking
(tests/test_supervisor_lifecycle.py), and with real processes in a few tests only.
"""

from __future__ import annotations

import os
import selectors
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable

import multiprocess

_FORK = multiprocess.get_context("fork")
READ_CHUNK = 1 << 20


@dataclass
class Child:
    """A forked worker as the system knows it: its pid, the read end of its pipe, its exit sentinel."""

    pid: int
    fd: int
    sentinel: int
    handle: Any = None


class System:
    """The real operating system."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def clock(self) -> float:
        """Seconds on a monotonic clock."""
        return self._clock()

    def spawn(self, name: str, run: Callable[[int, int], None]) -> Child:
        """Fork a child that calls run(write_fd, parent_pid); the parent keeps only the read end."""
        read_fd, write_fd = os.pipe()
        process = _FORK.Process(target=run, name=name, daemon=False, args=(write_fd, os.getpid()))
        try:
            process.start()
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # ours closed at once, or EOF would never come
        os.set_blocking(read_fd, False)
        return Child(pid=process.pid, fd=read_fd, sentinel=process.sentinel, handle=process)

    def selector(self) -> selectors.BaseSelector:
        """A selector for pipes, exit sentinels and the signal pipe."""
        return selectors.DefaultSelector()

    def read(self, fd: int) -> bytes | None:
        """What the pipe holds now (b"" at EOF), or None when it is empty but open."""
        try:
            return os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return None

    def close(self, fd: int) -> None:
        """Close our end of a pipe."""
        os.close(fd)

    def signal(self, pid: int, signum: int) -> None:
        """Signal a worker's process group and the worker itself (either may be gone already)."""
        for send in (os.killpg, os.kill):
            try:
                send(pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def sweep(self, pid: int) -> None:
        """SIGKILL what is left in a reaped worker's group (helpers it spawned, e.g. wandb-core)."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def join(self, child: Child, timeout: float | None) -> int | None:
        """Wait up to `timeout` (None: as long as it takes) for the child to exit; its exit code or None."""
        child.handle.join(timeout)
        code: int | None = child.handle.exitcode
        return code

    def release(self, child: Child) -> None:
        """Free what the process object holds once the child is reaped."""
        try:
            child.handle.close()
        except ValueError:
            pass
