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


class SourceState(enum.StrEnum):
    """A source's state after a refresh (the `state` of its NDJSON `source` record, SPEC)."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"


class ErrorKind(enum.StrEnum):
    """What a failure is about, as far as a judgement of it goes (`check`: UNKNOWN for the first two)."""

    CREDENTIALS = "credentials"  # no credentials, unreadable ones, or the service refused them
    CONFIGURATION = "configuration"  # arrctl is not told what to watch (e.g. no W&B entity/project)
    TIMEOUT = "timeout"  # the service did not answer in time
    OTHER = "other"  # any other failure: an HTTP error, a broken connection, a malformed answer


class Reason(str):
    """A one-line reason that knows its kind: text where text is shown, `kind` where it is judged.

    Reasons are composed into longer ones (`2 of 18 regions failed: …`) by the code that made
    them; the composer gives the whole its parts' kind (gcp_errors.summarize_failures)."""

    kind: ErrorKind

    def __new__(cls, text: str, kind: ErrorKind = ErrorKind.OTHER) -> Reason:
        reason = super().__new__(cls, text)
        reason.kind = kind
        return reason


def kind_of(reason: str) -> ErrorKind:
    """The kind a reason was made with (OTHER for plain text)."""
    return reason.kind if isinstance(reason, Reason) else ErrorKind.OTHER


class CheckState(enum.IntEnum):
    """A check's state and exit status, in the Monitoring Plugins convention (SPEC, "check")."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3
