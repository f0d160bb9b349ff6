"""Worker side of `arrctl logs`: one item's state and its log entries from a lower time bound.

Runs in a forked worker (`Refresher.poll`), one call per poll. ctx.extra: `kind` (refs.Kind
value), `id`, `region` (None until known: then every configured region is asked at once),
`since` (RFC 3339: the lower bound of the read; None: the item's creation) and, for a W&B
console log, `offset` (bytes already read). One fact is sent:
`{"found": bool, "row": Row|None, "entries": [slim entry, ...], "cut": reason|None,
"cut_kind": logs.Cut value|None, "held_s": float}` — the Cloud Logging reads go through
sources/logs.py (bounded, paged, the project's 429 hold respected and reported).

A slim entry is the part of a LogEntry that `logs` prints and the extractor reads: `insertId`,
`timestamp`, `severity`, the labels that tell tasks, attempts and replicas apart, and `lines`:
its text split into lines with secrets redacted (a private key spanning lines too), so that
the pipe's sanitiser (worker.PipeEmitter) keeps line breaks as breaks.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any, Callable

from arrctl.model import Row
from arrctl.sources import Emitter, FetchContext, SourceError, logs

FIRST_READ_PAGES = 10  # the first read of a long log keeps its newest 10,000 entries
_KEPT_LABELS = ("run.googleapis.com/task_index", "run.googleapis.com/task_attempt",
                "run.googleapis.com/execution_name", "build_step")


def slim(entry: dict[str, Any]) -> dict[str, Any]:
    """What `logs` keeps of one LogEntry (pure): time, key, severity, task labels, redacted lines."""
    from arrctl.extract import split_text
    from arrctl.extract.ingest import entry_text
    from arrctl.sanitize import redact_lines

    labels = entry.get("labels") if isinstance(entry.get("labels"), dict) else {}
    resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else {}
    resource_labels = resource.get("labels") if isinstance(resource.get("labels"), dict) else {}
    timestamp = entry.get("timestamp")
    return {
        "insertId": str(entry.get("insertId") or _key(timestamp, entry_text(entry))),
        "timestamp": timestamp if isinstance(timestamp, str) else None,
        "severity": entry.get("severity") if isinstance(entry.get("severity"), str) else None,
        "labels": {k: str(v) for k, v in labels.items() if k in _KEPT_LABELS},
        "replica": str(resource_labels["task_name"]) if resource_labels.get("task_name") else None,
        "lines": redact_lines(split_text(entry_text(entry))),
    }


def _key(timestamp: Any, text: str) -> str:
    """A stable key for an entry without insertId (the same in every poll's worker)."""
    import hashlib

    return f"{timestamp}/{hashlib.sha1(text.encode('utf-8', 'replace')).hexdigest()[:16]}"


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """The item's state and its entries (dispatch on the kind of item)."""
    from arrctl.refs import Kind

    kind = Kind(ctx.extra["kind"])
    follower = FOLLOWERS.get(kind)
    if follower is None:
        raise SourceError(f"arrctl logs cannot read the logs of a {kind.value.replace('_', ' ')} yet")
    follower(ctx, emit)


def _execution_row(ctx: FetchContext, emit: Emitter, short: str, region: str | None,
                   now: _dt.datetime) -> Row | None:
    """The runner execution `short`: from its region when known, else from every configured region."""
    from google.api_core import exceptions as api_exceptions

    from arrctl import clients
    from arrctl.sources.gcp_errors import describe_error
    from arrctl.sources.launcher import find_execution
    from arrctl.sources.runner import parse_execution

    config = ctx.config
    try:
        if region is None:
            return find_execution(ctx, emit, short, now)
        name = f"projects/{config.project}/locations/{region}/jobs/{config.runner_job}/executions/{short}"
        emit.call("run")
        try:
            found = clients.run_executions_client(ctx).get_execution(request={"name": name},
                                                                      **clients.call_kwargs(ctx))
        except api_exceptions.NotFound:
            return None
        return parse_execution(found, now)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 — one line for the user
        raise SourceError(f"execution {short}: {describe_error(exc, ctx.call_timeout_s)}") from None


def execution_logs(ctx: FetchContext, emit: Emitter) -> None:
    """A runner execution's state and its log entries since `since` (its creation by default)."""
    from arrctl import clients
    from arrctl.sources.runner import log_filter, logs_since

    started = time.monotonic()
    config = ctx.config
    short = ctx.extra["id"]
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    row = _execution_row(ctx, emit, short, ctx.extra.get("region"), now)
    if row is None:
        emit.facts([{"found": False, "row": None, "entries": [], "cut": None, "cut_kind": None, "held_s": 0.0}])
        return
    since = ctx.extra.get("since") or logs_since([row], now)
    text = log_filter(config.runner_job, [short], since)
    read_logging(ctx, emit, row, text, started)


def read_logging(ctx: FetchContext, emit: Emitter, row: Row, filter_text: str, started: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
    """One bounded Cloud Logging read for `row` (none while the project's 429 hold lasts); the fact."""
    if ctx.logging_hold_s > 0:  # a 429 (ours or another process's): the project's quota is spent
        emit.facts([{"found": True, "row": row, "entries": [], "cut": None, "cut_kind": None,
                     "held_s": ctx.logging_hold_s}])
        return
    pages = FIRST_READ_PAGES if ctx.extra.get("first") else logs.MAX_PAGES
    read = logs.read_entries(ctx, emit, filter_text, deadline_at=started + ctx.deadline_s - 0.5,
                             max_pages=pages, clock=clock)
    emit.log_reads({"called": read.calls > 0, "rate_limited": read.cut is logs.Cut.RATE_LIMITED})
    emit.facts([{"found": True, "row": row, "entries": [slim(e) for e in read.entries],
                 "cut": read.reason, "cut_kind": read.cut.value if read.cut else None, "held_s": 0.0}])


def _followers() -> dict[Any, Callable[[FetchContext, Emitter], None]]:
    from arrctl.refs import Kind

    return {Kind.EXECUTION: execution_logs}


FOLLOWERS = _followers()
