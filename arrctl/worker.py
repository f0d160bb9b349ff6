"""The child side of a refresh: one forked process that fetches one source and reports over a pipe.

Messages are orjson objects, one per line (JSON escapes newlines, so lines frame them):
  {"kind": "plan", "parts": [...]}            the parts (regions) this fetch will try
  {"kind": "rows", "part": str|null, "rows": [...]}   rows of a part; part null = the complete set
  {"kind": "facts", "facts": [...]}           terminal facts read from logs
  {"kind": "results", "results": [...]}       what a look-up found for its command (explain, launch, doctor, logs)
  {"kind": "call", "api": str, "n": int}      API calls made (benchmarks count them)
  {"kind": "done"} | {"kind": "error", "message": str, "error_kind": kinds.ErrorKind value}
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Any, Callable

import orjson

from arrctl.kinds import ErrorKind
from arrctl.lifeline import die_with_parent
from arrctl.sanitize import clean_row, clean_value
from arrctl.model import TerminalFact
from arrctl.sources import Emitter, FetchContext, SourceError

class PipeEmitter(Emitter):
    """Writes messages to the worker's pipe; blocking writes are fine, the supervisor drains."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, message: dict[str, Any]) -> None:
        """Write one framed message, all of it."""
        data = memoryview(orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        while data:
            written = os.write(self.fd, data)
            data = data[written:]

    def plan(self, parts: list[str]) -> None:
        self.send({"kind": "plan", "parts": list(parts)})

    def rows(self, rows: list[Any], part: str | None = None) -> None:
        self.send({"kind": "rows", "part": part, "rows": [clean_row(row) for row in rows]})

    def facts(self, facts: list[TerminalFact]) -> None:
        self.send({"kind": "facts", "facts": [clean_value(fact) for fact in facts]})

    def results(self, results: list[dict[str, Any]]) -> None:
        self.send({"kind": "results", "results": [clean_value(item) for item in results]})

    def call(self, api: str, n: int = 1) -> None:
        self.send({"kind": "call", "api": api, "n": n})

    def log_reads(self, report: dict[str, Any]) -> None:
        self.send({"kind": "log_reads", "report": clean_value(report)})


def one_line_error(exc: BaseException) -> str:
    """A one-line reason for an unexpected exception: its type and first line, no traceback."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {os.path.basename(frame[0].filename)}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {first}{where}"[:400] if first else f"{type(exc).__name__}{where}"


def run_worker(source: str, ctx: FetchContext, write_fd: int, parent_pid: int,
               fetch: Callable[[FetchContext, Emitter], None] | None = None) -> None:
    """Entry point in the forked child: fetch, report, and always leave with os._exit."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # die at once; no Python-level cleanup
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        die_with_parent(parent_pid, 1)
        try:
            os.setpgid(0, 0)  # own group, so helpers it spawns (wandb-core) die with it
        except OSError:
            pass
        devnull = os.open(os.devnull, os.O_RDWR)
        if not os.environ.get("ARRCTL_WORKER_STDERR"):
            os.dup2(devnull, 2)
        os.dup2(devnull, 1)  # libraries must never write into our stdout (NDJSON) stream
        os.dup2(devnull, 0)
        emit = PipeEmitter(write_fd)
        try:
            if fetch is None:
                from arrctl.sources import fetcher

                fetch = fetcher(source)
            fetch(ctx, emit)
            emit.send({"kind": "done"})
        except SourceError as exc:
            emit.send({"kind": "error", "message": clean_value(str(exc) or type(exc).__name__),
                       "error_kind": exc.kind.value})
        except Exception as exc:  # noqa: BLE001 — every failure must become a one-line record
            emit.send({"kind": "error", "message": clean_value(one_line_error(exc)),
                       "error_kind": ErrorKind.OTHER.value})
    except BaseException:  # noqa: BLE001 — e.g. a broken pipe once the supervisor is gone
        code = 1
    finally:
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)
