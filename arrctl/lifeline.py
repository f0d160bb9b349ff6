"""A child process's lifeline to its parent: die with it (the worker and the sandbox both need it).

Imports nothing of arrctl, so the sandbox, a separate world, may use it too.
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, code: int) -> None:
    """Ask the kernel to SIGKILL us when the parent dies; exit with `code` now if it already has
    (the race before prctl)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the process group kill and the check below still help
        pass
    if os.getppid() != parent_pid:
        os._exit(code)
