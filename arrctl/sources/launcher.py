"""Worker-side calls of `arrctl launch`: start the runner job, look at one execution and its logs."""

from __future__ import annotations

import datetime as _dt
import time

from arrctl.model import Row
from arrctl.sources import Emitter, FetchContext, SourceError, logs

EXPLAIN_MAX_PAGES = 40  # explain reads one execution's whole log, within its deadline
EXPLAIN_RETRY_S = (1.0, 2.0, 4.0)  # in-command backoff between cut reads, while the deadline allows


def start_execution(ctx: FetchContext, emit: Emitter) -> None:
    """Run the job once (Cloud Run v2 RunJob) and report the new execution's name."""
    from arrctl.sources import clients
    from arrctl.sources.gcp_errors import describe_error

    config = ctx.config
    region = ctx.extra["region"]
    name = f"projects/{config.project}/locations/{region}/jobs/{config.runner_job}"
    clients.credentials(ctx)
    emit.call("run")
    try:
        operation = clients.run_jobs_client(ctx).run_job(request={"name": name}, **clients.call_kwargs(ctx))
        execution = operation.metadata.name if operation.metadata is not None else ""
    except Exception as exc:  # noqa: BLE001 — one line for the user
        reason = describe_error(exc, ctx.call_timeout_s)
        raise SourceError(f"could not start {config.runner_job} in {region}: {reason}", reason.kind) from None
    if not execution:
        raise SourceError(f"{config.runner_job} started but the operation named no execution")
    emit.results([{"execution": execution.rsplit("/", 1)[-1], "name": execution, "at": time.time()}])


def watch_execution(ctx: FetchContext, emit: Emitter) -> None:
    """The execution's state, then what its logs say so far (one bounded read, sources/logs.py).

    One fact: {"logs": "read"|"unread", "reason", "evidence" (launch.Evidence.to_dict), "fatal",
    "rule"}. Logs that cannot be read are not a failure of the watch: launch then falls back on
    the time window to tell its job.
    """
    from arrctl.sources import clients
    from arrctl.extract import first_fatal, lines_from_entries
    from arrctl.launch import evidence_from_lines
    from arrctl.sources.gcp_errors import describe_error
    from arrctl.sources.runner import judge_attempts, last_attempts, log_filter, logs_since, parse_execution

    started = time.monotonic()
    config = ctx.config
    full_name, short = ctx.extra["execution_name"], ctx.extra["execution"]
    clients.credentials(ctx)
    emit.call("run")
    now = _dt.datetime.now(_dt.timezone.utc)
    try:
        execution = clients.run_executions_client(ctx).get_execution(request={"name": full_name},
                                                                      **clients.call_kwargs(ctx))
        row = parse_execution(execution, now)
    except Exception as exc:  # noqa: BLE001
        raise SourceError(f"execution {short}: {describe_error(exc)}") from None
    emit.rows([row])
    if ctx.logging_hold_s > 0:  # a 429 (ours or another process's): wait rather than spend more quota
        emit.results([{"logs": "unread", "reason": f"Cloud Logging reads held {ctx.logging_hold_s:.0f}s more after a 429"}])
        return
    read = logs.read_entries(ctx, emit, log_filter(config.runner_job, [short], logs_since([row], now)),
                             deadline_at=started + ctx.deadline_s - 0.5)
    emit.log_reads({"called": read.calls > 0, "rate_limited": read.cut is logs.Cut.RATE_LIMITED})
    if read.cut is not None and not read.entries:
        emit.results([{"logs": "unread", "reason": read.reason}])
        return
    entries = read.entries
    lines = lines_from_entries(last_attempts(entries))  # a retried task's earlier attempts are history
    if row["status"] in ("FAILED", "CANCELLED", "TIMEOUT"):
        # the execution ended: its whole log names the root error better than Cloud Run's condition
        analysis = judge_attempts(row, entries)
        message = analysis.message if analysis.verdict == "failed" else row["extra"].get("condition")
        emit.rows([{**row, "message": message or row["message"]}])  # type: ignore[misc]
    fatal = first_fatal(lines)
    emit.results([{"logs": "read", "reason": read.reason, "evidence": evidence_from_lines(lines).to_dict(),
                 "fatal": fatal.message if fatal else None, "rule": fatal.rule if fatal else None}])


def execution_in(ctx: FetchContext, emit: Emitter, region: str, short: str, now: _dt.datetime) -> Row | None:
    """The execution `short` of the runner job in one region, or None when it is not there."""
    from google.api_core import exceptions as api_exceptions

    from arrctl.sources import clients
    from arrctl.sources.runner import parse_execution

    config = ctx.config
    name = f"projects/{config.project}/locations/{region}/jobs/{config.runner_job}/executions/{short}"
    emit.call("run")
    try:
        found = clients.run_executions_client(ctx).get_execution(request={"name": name},
                                                                  **clients.call_kwargs(ctx))
    except api_exceptions.NotFound:
        return None
    return parse_execution(found, now)


def find_execution(ctx: FetchContext, emit: Emitter, short: str, now: _dt.datetime) -> Row | None:
    """The execution `short` of the runner job, looked up in every configured region at once."""
    from arrctl.sources import clients

    config = ctx.config
    regions = [config.job_region()] + [r for r in config.regions if r != config.job_region()]
    found = clients.fan_out(regions, lambda region: execution_in(ctx, emit, region, short, now),
                            max(1.0, ctx.deadline_s * 0.3))
    return next((row for _region, row, _error in found if row is not None), None)


def explain_execution(ctx: FetchContext, emit: Emitter) -> None:
    """All logs of one execution, read by the shared rules (sources/logs.py), analysed in the worker.

    The read is bounded below by the execution's creation (from memory, else from Cloud Run,
    else the bucket's 30-day retention); a cut read is retried with a short backoff while the
    deadline allows; when the logs cannot be read, Cloud Run's own condition is the answer.
    The fact carries `found`: whether the execution exists in a configured region, so that a
    name that does not exist is told apart from logs that are not there (yet).
    """
    from arrctl.sources import clients
    from arrctl.extract import analyze, lines_from_entries
    from arrctl.sources.runner import last_attempts, log_filter, logs_since

    started = time.monotonic()
    deadline_at = started + ctx.deadline_s - 0.5
    config = ctx.config
    short = ctx.extra["execution"]
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    row: Row | None = None if ctx.extra.get("created") else find_execution(ctx, emit, short, now)
    created = ctx.extra.get("created") or (row["created"] if row else None)
    text = log_filter(config.runner_job, [short], logs_since([{"created": created}] if created else [], now))
    read = logs.LogRead(cut=logs.Cut.RATE_LIMITED,
                        reason=f"Cloud Logging reads held {ctx.logging_hold_s:.0f}s more after a 429")
    wait = ctx.logging_hold_s  # another process's 429 counts for us too: the quota is the project's
    for attempt in range(len(EXPLAIN_RETRY_S) + 1):
        if wait > 0:
            if time.monotonic() + wait >= deadline_at - 1.0:
                break  # no time left to wait: conclude with what we have
            time.sleep(wait)
        read = logs.read_entries(ctx, emit, text, deadline_at=deadline_at, max_pages=EXPLAIN_MAX_PAGES)
        emit.log_reads({"called": read.calls > 0, "rate_limited": read.cut is logs.Cut.RATE_LIMITED})
        if read.complete or read.cut in (logs.Cut.PAGES, logs.Cut.DEADLINE) or attempt == len(EXPLAIN_RETRY_S):
            break
        wait = logs.hold_s(1) if read.cut is logs.Cut.RATE_LIMITED else EXPLAIN_RETRY_S[attempt]
    analysis = analyze(lines_from_entries(last_attempts(read.entries))).to_dict()  # each task's last attempt
    note = None
    if not read.complete:
        note = f"logs of {short} not fully read: {read.reason}"
        condition = row["extra"].get("condition") if row is not None else None
        if row is not None and analysis["verdict"] == "unknown" and condition:
            analysis["message"] = f"{condition} (Cloud Run's words)"
            analysis["verdict"] = {"SUCCEEDED": "succeeded", "FAILED": "failed"}.get(row["status"], "unknown")
    emit.results([{**analysis, "entries": len(read.entries), "note": note,
                 "found": row is not None or bool(ctx.extra.get("created"))}])
