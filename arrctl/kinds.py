"""Kinds as types: the exit statuses (SPEC), a source's state, what a failure is about.

A kind is set where the thing it names is decided (a source's exception, the supervisor's kill
at a deadline, a command's outcome) and travels with it; no code finds it again by searching a
message's text.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """arrctl's exit statuses (SPEC, "Exit codes"); `check` has its own four (health.CheckState)."""

    OK = 0
    ERROR = 1  # a source failed or timed out; the thing asked for is not there or failed
    USAGE = 2  # a usage or configuration error
    SOFTWARE = 70  # an internal error (sysexits.h EX_SOFTWARE)
    TIMEOUT = 124  # launch: no conclusive signal in time (as timeout(1) exits)
    SIGINT = 130  # 128 + the signal, as the shell reports it
    SIGTERM = 143
