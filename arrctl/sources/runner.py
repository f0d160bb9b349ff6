"""Source `runner`: executions of the Cloud Run job that runs the W&B Launch agent.

Every configured region is listed at once (daemon threads); the newest executions are kept,
and those that became terminal since the last refresh have their logs read with ONE Cloud
Logging query, from which the root error (or the success summary) is extracted.

A failed log read keeps the rows: they are sent complete, their FAILED and SUCCEEDED rows
without a message, then the source reports `logs: <reason>`; no fact is sent, so the next
refresh reads those logs again. Cloud Run's own condition message is kept in
`extra.condition`, and becomes the message when the settled logs explain nothing.
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from typing import Any, Callable

from arrctl.model import Row, duration_between, epoch, iso_z, make_row
from arrctl.sources import Emitter, FetchContext, SourceError

SOURCE = "runner"
PAGE_SIZE = 50
LOG_PAGE_SIZE = 1000
LOG_MAX_PAGES = 5
LOG_SETTLE_S = 300.0  # logs arrive late: an execution whose logs say nothing is re-read until then
REGION_SHARE = 0.6  # of the deadline for listing regions; the rest is for the log read
EXECUTION_LABEL = "run.googleapis.com/execution_name"
_TIMEOUT_WORDS = re.compile(r"\b(timeout|timed out|deadline exceeded)\b", re.IGNORECASE)
_CANCEL_REASONS = {"CANCELLED", "CANCELLING"}
TERMINAL = ("SUCCEEDED", "FAILED", "TIMEOUT", "CANCELLED")


def _name_part(name: str, key: str) -> str | None:
    """The segment after `key` in a resource name (`projects/P/locations/R/...`)."""
    parts = name.split("/")
    for n in range(len(parts) - 1):
        if parts[n] == key:
            return parts[n + 1]
    return None


def _enum_name(value: Any) -> str:
    """The name of a proto enum value (or the text of a string)."""
    return getattr(value, "name", None) or str(value)


def _completed_condition(execution: Any) -> Any | None:
    """The `Completed` condition, which carries the execution's outcome."""
    for condition in execution.conditions:
        if condition.type_ == "Completed":
            return condition
    return None


def execution_status(execution: Any) -> tuple[str, str]:
    """(normalised status, Cloud Run's own word) of a run_v2.Execution."""
    completed = _completed_condition(execution)
    state = _enum_name(completed.state) if completed is not None else None
    reasons = {_enum_name(c.execution_reason) for c in execution.conditions}
    cancelled = execution.cancelled_count > 0 or bool(reasons & _CANCEL_REASONS)
    if state in ("CONDITION_SUCCEEDED", "CONDITION_FAILED"):
        if cancelled:
            return "CANCELLED", state
        if state == "CONDITION_SUCCEEDED":
            return "SUCCEEDED", state
        if completed is not None and _TIMEOUT_WORDS.search(completed.message or ""):
            return "TIMEOUT", state
        return "FAILED", state
    if execution.running_count > 0 or execution.start_time is not None:
        return "RUNNING", "RUNNING"
    return "PENDING", state or "PENDING"


def parse_execution(execution: Any, now: _dt.datetime) -> Row:
    """One runner row from a run_v2.Execution (pure)."""
    from arrctl.sanitize import one_line

    name = execution.name
    region = _name_part(name, "locations")
    project = _name_part(name, "projects")
    short = name.rsplit("/", 1)[-1]
    job = _name_part(name, "jobs") or (execution.job.rsplit("/", 1)[-1] if execution.job else None)
    status, raw_status = execution_status(execution)
    created, started = iso_z(execution.create_time), iso_z(execution.start_time)
    finished = iso_z(execution.completion_time)
    if status == "RUNNING" and finished is None:
        duration = duration_between(started, iso_z(now))
    else:
        duration = duration_between(started, finished)
    completed = _completed_condition(execution)
    condition = one_line(completed.message) if completed is not None and completed.message else None
    # FAILED and SUCCEEDED rows get their message from the logs; until then it stays None,
    # which tells the supervisor that they are not explained yet (and must not be remembered).
    message = condition if status in ("TIMEOUT", "CANCELLED") else None
    return make_row(
        SOURCE, short, status, raw_status=raw_status, region=region, name=job,
        created=created, started=started, finished=finished, duration_s=duration,
        message=message,
        url=(f"https://console.cloud.google.com/run/jobs/executions/details/"
             f"{region}/{short}/tasks?project={project}"),
        extra={"job": job, "task_count": execution.task_count,
               "succeeded": execution.succeeded_count, "failed": execution.failed_count,
               "running": execution.running_count, "log_uri": execution.log_uri or None,
               "condition": condition if status in TERMINAL else None},
    )


def newest(rows: list[Row], limit: int) -> list[Row]:
    """The `limit` newest rows, newest first (by creation time, then id)."""
    ordered = sorted(rows, key=lambda r: (epoch(r["created"]) or 0.0, r["id"]), reverse=True)
    return ordered[:limit]


def needs_logs(rows: list[Row], known_terminal: frozenset[str]) -> list[Row]:
    """Rows whose logs must be read: terminal with a readable outcome and not yet remembered."""
    return [r for r in rows if r["status"] in ("SUCCEEDED", "FAILED") and r["id"] not in known_terminal]


def log_filter(job: str, executions: list[str], since: str | None = None) -> str:
    """The Cloud Logging filter for the logs of several executions of one job."""
    names = " OR ".join(f'labels."{EXECUTION_LABEL}"="{name}"' for name in executions)
    text = f'resource.type="cloud_run_job" AND resource.labels.job_name="{job}" AND ({names})'
    if since:
        text += f' AND timestamp>="{since}"'
    return text


def group_entries(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Log entries per execution name, in the API's order (lines_from_entries puts them in time order)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        name = (entry.get("labels") or {}).get(EXECUTION_LABEL)
        if name:
            groups.setdefault(name, []).append(entry)
    return groups


def conclude(row: Row, analysis: Any) -> dict[str, Any]:
    """The terminal fact of one execution from the analysis of its logs (pure)."""
    verdict = analysis.verdict
    message = row["message"] or row["extra"].get("condition")  # logs that say nothing: Cloud Run's words
    if verdict == "failed" and analysis.message:
        message = analysis.message
    elif row["status"] == "SUCCEEDED":
        if verdict == "succeeded":
            jobs = analysis.jobs
            message = analysis.message or (f"Completed: {jobs} jobs" if jobs is not None else "Completed")
        else:
            message = "Completed"
    return {"source": SOURCE, "id": row["id"], "status": row["status"], "verdict": verdict,
            "message": message, "rule": analysis.rule, "jobs": analysis.jobs,
            "line": analysis.line, "finished": row["finished"]}


def settled(row: Row, now: _dt.datetime) -> bool:
    """Whether an execution finished long enough ago for its logs to be complete."""
    finished = epoch(row["finished"])
    return finished is not None and now.timestamp() - finished >= LOG_SETTLE_S


def read_logs(ctx: FetchContext, emit: Emitter, rows: list[Row], deadline_at: float,
              clock: Callable[[], float] = time.monotonic) -> tuple[dict[str, list[dict[str, Any]]], bool]:
    """All log entries of `rows` with one query (bounded paging); (entries per id, read complete)."""
    from arrctl import clients

    config = ctx.config
    connection = clients.logging_connection(ctx, config.project)
    since = min((r["created"] for r in rows if r["created"]), key=lambda t: epoch(t) or 0.0, default=None)
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{config.project}"],
        "filter": log_filter(config.runner_job, [r["id"] for r in rows], since),
        "orderBy": "timestamp desc",
        "pageSize": LOG_PAGE_SIZE,
    }
    entries: list[dict[str, Any]] = []
    for page in range(LOG_MAX_PAGES):
        remaining = deadline_at - clock()
        if page and remaining < 1.0:  # keep what we have rather than be killed mid-read
            return group_entries(entries), False
        emit.call("logging")
        answer = connection.api_request(method="POST", path="/entries:list", data=body,
                                        timeout=min(ctx.call_timeout_s, max(0.5, remaining)))
        entries.extend(answer.get("entries") or [])
        token = answer.get("nextPageToken")
        if not token:
            return group_entries(entries), True
        body = {**body, "pageToken": token}
    return group_entries(entries), False


_OUTCOMES = {"SUCCEEDED": "succeeded", "FAILED": "failed", "TIMEOUT": "failed"}


def explain_rows(rows: list[Row], groups: dict[str, list[dict[str, Any]]], complete: bool,
                 now: _dt.datetime) -> list[dict[str, Any]]:
    """Facts for the executions whose logs are conclusive (pure, given the entries)."""
    from arrctl.extract import analyze, lines_from_entries

    facts = []
    for row in rows:
        entries = groups.get(row["id"], [])
        outcome = _OUTCOMES.get(row["status"])  # the platform's word is an input, not a guess
        analysis = analyze(lines_from_entries(entries), outcome)
        if analysis.verdict != "unknown" or (complete and settled(row, now)):
            facts.append(conclude(row, analysis))
    return facts


def with_facts(rows: list[Row], facts: list[dict[str, Any]]) -> list[Row]:
    """Rows with the messages (and job counts) of their facts, as the supervisor fills them from memory."""
    by_id = {fact["id"]: fact for fact in facts}
    out: list[Row] = []
    for row in rows:
        fact = by_id.get(row["id"])
        if fact is not None:
            extra = row["extra"] if fact.get("jobs") is None else {**row["extra"], "jobs": fact["jobs"]}
            row = {**row, "message": fact["message"], "extra": extra}  # type: ignore[assignment]
        out.append(row)
    return out


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """List executions in every region, newest first; read the logs of newly terminal ones."""
    from arrctl import clients
    from arrctl.sources.gcp_errors import describe_error, failure_error, in_order, summarize_failures
    from google.api_core import exceptions as api_exceptions

    start = time.monotonic()
    emit = clients.LockedEmitter(emit)
    config = ctx.config
    regions = list(config.regions)
    limit = config.runner_limit
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)  # no credentials: one clear error, not one per region
    emit.plan(regions)
    not_deployed: set[str] = set()

    def list_region(region: str) -> list[Row]:
        client = clients.run_executions_client(ctx)
        parent = f"projects/{config.project}/locations/{region}/jobs/{config.runner_job}"
        emit.call("run")
        try:
            pager = client.list_executions(request={"parent": parent, "page_size": PAGE_SIZE},
                                           **clients.call_kwargs(ctx))
        except api_exceptions.NotFound:  # the job is not deployed in this region
            not_deployed.add(region)
            return []
        # Results come newest first (API reference), so the first `limit` are all we need.
        executions = clients.take_pages(pager, lambda: emit.call("run"), lambda n: n >= limit,
                                        "executions")
        return newest([parse_execution(e, now) for e in executions], limit)

    rows: list[Row] = []
    failures: list[tuple[str, str]] = []
    budget = max(1.0, ctx.deadline_s * REGION_SHARE)
    for region, result, error in clients.fan_out(regions, list_region, budget):
        if error is not None:
            failures.append((region, error))
            continue
        emit.rows(result or [], part=region)
        rows.extend(result or [])
    if len(failures) == len(regions):
        raise failure_error(in_order(failures, regions), len(regions))
    if len(not_deployed) == len(regions):
        raise SourceError(f"job {config.runner_job} not found in any of the {len(regions)} regions")
    rows = newest(rows, limit)
    emit.rows(rows)  # the complete set already, should the log read be cut short

    problems = [summarize_failures(in_order(failures, regions), len(regions))] if failures else []
    todo = needs_logs(rows, ctx.known_terminal)
    if todo:
        try:
            groups, complete = read_logs(ctx, emit, todo, start + ctx.deadline_s - 0.5)
        except Exception as exc:  # noqa: BLE001 — the rows stay; the reason is reported
            problems.append(f"logs: {describe_error(exc, ctx.call_timeout_s)}")
        else:
            facts = explain_rows(todo, groups, complete, now)
            if facts:
                emit.facts(facts)
                emit.rows(with_facts(rows, facts))
    if problems:
        raise SourceError("; ".join(problems))
