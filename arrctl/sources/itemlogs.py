"""Worker side of `arrctl logs`: one item's state and its log entries from a lower time bound.

Runs in a forked worker (`Refresher.poll`), one call per poll. ctx.extra: `kinds` (the
ids.Kind values the ID may be, tried in turn; one once found), `id`, `region` (None until
known: then every configured region is asked at once), `since` (RFC 3339: the lower bound of
the read; None: the item's creation), `entity`/`wandb_project` and `offset` for a W&B run
(bytes of its console log already read). One fact is sent: `{"found": bool, "kind", "row":
Row|None, "entries": [slim entry, ...], "cut": reason|None, "cut_kind": logs.Cut value|None,
"held_s": float, "offset"}` — the Cloud Logging reads go through sources/logs.py (bounded,
paged, the project's 429 hold respected and reported), with the filters of sources/runner.py,
vertex.py and builds.py; the lookups are sources/finders.py's; a W&B console log is read on by
byte offset (sources/wandb_logs.py `fetch_tail(start=...)`).

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


def slim(entry: dict[str, Any], replica: Callable[[dict[str, Any]], str] | None = None,
         redactor: Any = None) -> dict[str, Any]:
    """What `logs` keeps of one LogEntry (pure): time, key, severity, task labels, replica, redacted lines."""
    from arrctl.extract import split_text
    from arrctl.extract.ingest import entry_text
    from arrctl.sanitize import LineRedactor

    redactor = redactor or LineRedactor()
    labels: dict[str, Any] = entry["labels"] if isinstance(entry.get("labels"), dict) else {}
    timestamp = entry.get("timestamp")
    return {
        "insertId": str(entry.get("insertId") or _key(timestamp, entry_text(entry))),
        "timestamp": timestamp if isinstance(timestamp, str) else None,
        "severity": entry.get("severity") if isinstance(entry.get("severity"), str) else None,
        "labels": {k: str(v) for k, v in labels.items() if k in _KEPT_LABELS},
        "replica": (replica(entry) or None) if replica is not None else None,
        "lines": [redactor.line(line) for line in split_text(entry_text(entry))],
    }


def slim_all(entries: list[dict[str, Any]], replica: Callable[[dict[str, Any]], str] | None,
             inside_key: bool) -> tuple[list[dict[str, Any]], bool]:
    """Entries in time order, slimmed with one redactor over all their lines (a private key logged line
    by line, one entry each, is redacted whole), and whether a key block is still open at the end."""
    from arrctl.model import epoch
    from arrctl.sanitize import LineRedactor

    redactor = LineRedactor(inside_key)
    ordered = sorted(reversed(entries), key=lambda e: epoch(e.get("timestamp")) or 0.0)  # the API lists newest first
    return [slim(e, replica, redactor) for e in ordered], redactor.inside


def _key(timestamp: Any, text: str) -> str:
    """A stable key for an entry without insertId (the same in every poll's worker)."""
    import hashlib

    return f"{timestamp}/{hashlib.sha1(text.encode('utf-8', 'replace')).hexdigest()[:16]}"


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """The item's state and its new lines: each kind the ID may name is tried in turn (the first found wins)."""
    from arrctl.ids import Kind

    kinds = [Kind(k) for k in ctx.extra["kinds"]]
    for kind in kinds:
        fact = FOLLOWERS[kind](ctx, emit)
        if fact is not None:
            emit.results([{**fact, "kind": kind.value, "found": True}])
            return
    emit.results([{"found": False, "row": None, "entries": [], "cut": None, "cut_kind": None, "held_s": 0.0}])


def _regions(ctx: FetchContext) -> list[str]:
    return [ctx.extra["region"]] if ctx.extra.get("region") else list(ctx.config.regions)


def _execution_row(ctx: FetchContext, emit: Emitter, short: str, region: str | None,
                   now: _dt.datetime) -> Row | None:
    """The runner execution `short`: from its region when known, else from every configured region."""
    from arrctl.sources.gcp_errors import describe_error
    from arrctl.sources.launcher import execution_in, find_execution

    try:
        if region is None:
            return find_execution(ctx, emit, short, now)
        return execution_in(ctx, emit, region, short, now)
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 — one line for the user
        raise SourceError(f"execution {short}: {describe_error(exc, ctx.call_timeout_s)}") from None


def execution_logs(ctx: FetchContext, emit: Emitter) -> dict[str, Any] | None:
    """A runner execution's state and its log entries since `since` (its creation by default)."""
    from arrctl.sources import clients
    from arrctl.sources.runner import log_filter, logs_since

    started = time.monotonic()
    short = ctx.extra["id"]
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    row = _execution_row(ctx, emit, short, ctx.extra.get("region"), now)
    if row is None:
        return None
    since = ctx.extra.get("since") or logs_since([row], now)
    return read_logging(ctx, emit, row, log_filter(ctx.config.runner_job, [short], since), started)


def vertex_logs(ctx: FetchContext, emit: Emitter) -> dict[str, Any] | None:
    """A Vertex AI custom job's state and its replicas' entries (`resource.type="ml_job"`, sources/vertex.py)."""
    from arrctl.sources import clients
    from arrctl.sources import logread, vertex
    from arrctl.sources.finders import find_vertex_job

    started = time.monotonic()
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    found = find_vertex_job(ctx, emit, ctx.extra["id"], _regions(ctx), now)
    if found is None:
        return None
    _region, row = found
    since = ctx.extra.get("since") or logread.oldest_created([row], now)
    return read_logging(ctx, emit, row, vertex.log_filter([ctx.extra["id"]], since), started,
                        replica=vertex.replica_of)


def build_logs(ctx: FetchContext, emit: Emitter) -> dict[str, Any] | None:
    """A build's state and its log entries (`resource.type="build"`, sources/builds.py)."""
    from arrctl.sources import bucketlog, builds, clients, logread
    from arrctl.sources.finders import find_build

    started = time.monotonic()
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    places = [ctx.extra["region"]] if ctx.extra.get("region") else builds.locations(list(ctx.config.regions))
    found = find_build(ctx, emit, ctx.extra["id"], places, now)
    if found is None:
        return None
    _location, row = found
    if row["extra"].get("log_object"):  # GCS_ONLY: the tail of its log object, read whole each poll
        read = bucketlog.read_all(ctx, emit, [(row["id"], row["extra"]["log_object"])],
                                  started + ctx.deadline_s - 0.5, time.monotonic, keyed=True)
        entries, inside = slim_all(list(reversed(read.entries)), None, bool(ctx.extra.get("inside_key")))
        return {"row": row, "entries": entries, "cut": read.reason, "cut_kind": read.cut.value if read.cut else None,
                "held_s": 0.0, "inside_key": inside}
    since = ctx.extra.get("since") or logread.oldest_created([row], now)
    return read_logging(ctx, emit, row, builds.log_filter(ctx.config.project, [ctx.extra["id"]], since), started)


def wandb_logs(ctx: FetchContext, emit: Emitter) -> dict[str, Any] | None:
    """A W&B run's state and its console log (output.log) from byte `offset` on (sources/wandb_logs.py)."""
    from arrctl.sources import wandb_logs as console
    from arrctl.sources.finders import find_wandb_run
    from arrctl.sources.wandb_client import wandb_client

    if not (ctx.extra.get("entity") or ctx.config.wandb_entity) and len(ctx.extra["kinds"]) > 1:
        return None  # a bare id with W&B not configured: not a guess worth a W&B call
    started = time.monotonic()
    offset = int(ctx.extra.get("offset") or 0)
    with wandb_client(ctx, emit, ctx.extra.get("entity"), ctx.extra.get("wandb_project")) as client:
        found = find_wandb_run(client, emit, ctx.extra["id"])
        if found is None:
            return None
        run, row = found
        node = console.file_node(run, emit)
        tail = console.Tail(text="", size=offset)
        if node is not None:
            budget = max(0.5, started + ctx.deadline_s - 0.5 - time.monotonic())
            tail = console.fetch_tail(node, base_url=client.base_url, api_key=client.api_key,
                                      timeout_s=min(client.timeout_s, budget), emit=emit, start=offset)
    if tail.cut is not None:
        return {"row": row, "entries": [], "cut": tail.cut, "cut_kind": "error", "held_s": 0.0, "offset": offset}
    entries, inside = console_entries(tail.text or "", offset, bool(ctx.extra.get("inside_key")))
    return {"row": row, "entries": entries, "cut": None, "cut_kind": None, "held_s": 0.0, "inside_key": inside,
            "offset": tail.size if tail.size is not None else offset}


def console_entries(text: str, offset: int, inside_key: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """The lines of a console log read from byte `offset` as slim entries, keyed by their byte offset (pure),
    and whether a private-key block is still open at their end."""
    from arrctl.extract import split_text
    from arrctl.sanitize import LineRedactor

    redactor = LineRedactor(inside_key)
    out: list[dict[str, Any]] = []
    position = offset
    for line in split_text(text):
        out.append({"insertId": f"byte:{position}", "timestamp": None, "severity": None, "labels": {},
                    "replica": None, "lines": [redactor.line(line)]})
        position += len(line.encode("utf-8", "replace")) + 1
    return out, redactor.inside


def read_logging(ctx: FetchContext, emit: Emitter, row: Row, filter_text: str, started: float,
                 replica: Callable[[dict[str, Any]], str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """One bounded Cloud Logging read for `row` (none while the project's 429 hold lasts): the fact."""
    if ctx.logging_hold_s > 0:  # a 429 (ours or another process's): the project's quota is spent
        return {"row": row, "entries": [], "cut": None, "cut_kind": None, "held_s": ctx.logging_hold_s}
    pages = FIRST_READ_PAGES if ctx.extra.get("first") else logs.MAX_PAGES
    read = logs.read_entries(ctx, emit, filter_text, deadline_at=started + ctx.deadline_s - 0.5,
                             max_pages=pages, clock=clock)
    emit.log_reads({"called": read.calls > 0, "rate_limited": read.cut is logs.Cut.RATE_LIMITED})
    entries, inside = slim_all(read.entries, replica, bool(ctx.extra.get("inside_key")))
    return {"row": row, "entries": entries, "cut": read.reason, "cut_kind": read.cut.value if read.cut else None,
            "held_s": 0.0, "inside_key": inside}


def _followers() -> dict[Any, Callable[[FetchContext, Emitter], dict[str, Any] | None]]:
    from arrctl.ids import Kind

    return {Kind.EXECUTION: execution_logs, Kind.VERTEX_JOB: vertex_logs, Kind.BUILD: build_logs,
            Kind.WANDB_RUN: wandb_logs}


FOLLOWERS = _followers()
