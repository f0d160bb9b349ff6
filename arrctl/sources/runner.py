"""Source `runner`: executions of the Cloud Run job that runs the W&B Launch agent.

Every configured region is listed at once (daemon threads); the newest executions are kept,
and those that became terminal since the last refresh have their logs read with ONE Cloud
Logging query, from which the root error (or the success summary) is extracted.

Tasks retry (3 times by default: https://cloud.google.com/run/docs/configuring/max-retries) and
an execution may have several tasks; every attempt logs under the same execution label, told
apart by `run.googleapis.com/task_index` and `run.googleapis.com/task_attempt`. Only the last
attempt of each task is judged: a retry that succeeded is a success, whatever the attempt
before it said.

Until its logs are read a terminal row shows Cloud Run's own condition message, prefixed
`Cloud Run: ` and marked `extra.logs_unread: true`; Cloud Run's message is also kept in
`extra.condition`, and becomes the message when the settled logs explain nothing. How the read
is batched, remembered, retried and concluded is shared with the other sources that read logs
(`sources/logread.py`).
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any, Mapping, Sequence

from arrctl.model import Row, TerminalFact, duration_between, iso_z, make_row, newest_first
from arrctl.sources import Emitter, FetchContext, SourceError, logread, logs
from arrctl.sources.logs import filter_string

SOURCE = "runner"
PAGE_SIZE = 50
REGION_SHARE = 0.6  # of the deadline for listing regions; the rest is for the log read
EXECUTION_LABEL = "run.googleapis.com/execution_name"
TASK_INDEX_LABEL = "run.googleapis.com/task_index"
TASK_ATTEMPT_LABEL = "run.googleapis.com/task_attempt"
PLATFORM_PREFIX = "Cloud Run: "  # a message in Cloud Run's words, shown until the logs are read
TERMINAL = ("SUCCEEDED", "FAILED", "TIMEOUT", "CANCELLED")
READ_LOGS = ("SUCCEEDED", "FAILED", "TIMEOUT")  # the outcomes whose logs say why
# The Completed condition's reasons (run_v2 types/condition.py). `executionReason` CANCELLED:
# "The execution was cancelled by users"; DELETED: "The execution was deleted" — ended by a
# person, not a failure. The common `reason` PROGRESS_DEADLINE_EXCEEDED, "Timed out waiting for
# completion", is the one word of the Execution resource for a timeout: TIMEOUT is decided from
# it alone, never from the wording of a message.
_CANCEL_REASONS = frozenset({"CANCELLED", "DELETED"})
_TIMEOUT_REASONS = frozenset({"PROGRESS_DEADLINE_EXCEEDED"})


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


def _reason(condition: Any) -> str | None:
    """The condition's reason: `executionReason` or the common `reason` (a oneof), if set."""
    for field in ("execution_reason", "reason"):
        if field in condition:  # proto-plus: whether the oneof member is set
            name = _enum_name(getattr(condition, field))
            if not name.endswith("_UNDEFINED"):
                return name
    return None


def execution_status(execution: Any) -> tuple[str, str]:
    """(normalised status, Cloud Run's own word) of a run_v2.Execution.

    Decided from the `Completed` condition alone: its state (CONDITION_SUCCEEDED and
    CONDITION_FAILED are terminal) and its reason. Task counts are not the outcome: a task
    that fails for good cancels its siblings, so a failed multi-task execution has a
    `cancelledCount` and is FAILED. The raw word is the reason when the condition has one
    (NON_ZERO_EXIT_CODE, CANCELLED, CANCELLING, PROGRESS_DEADLINE_EXCEEDED, ...), else its state.
    """
    completed = _completed_condition(execution)
    state = _enum_name(completed.state) if completed is not None else "STATE_UNSPECIFIED"
    reason = _reason(completed) if completed is not None else None
    raw = reason or state
    if state == "CONDITION_SUCCEEDED":
        return "SUCCEEDED", raw
    if state == "CONDITION_FAILED":
        if reason in _CANCEL_REASONS:
            return "CANCELLED", raw
        if reason in _TIMEOUT_REASONS:
            return "TIMEOUT", raw
        return "FAILED", raw
    if execution.running_count > 0 or execution.start_time is not None:
        return "RUNNING", raw
    return "PENDING", raw


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
    # FAILED, TIMEOUT and SUCCEEDED rows get their message from the logs; until then it stays
    # None, which tells the supervisor that they are not explained yet (see `provisional`).
    message = condition if status == "CANCELLED" else None
    return make_row(
        SOURCE, short, status, raw_status=raw_status, region=region, name=job,
        created=created, started=started, finished=finished, duration_s=duration,
        message=message,
        url=(f"https://console.cloud.google.com/run/jobs/executions/details/"
             f"{region}/{short}/tasks?project={project}"),
        extra={"job": job, "task_count": execution.task_count,
               "succeeded": execution.succeeded_count, "failed": execution.failed_count,
               "cancelled": execution.cancelled_count, "retried": execution.retried_count,
               "running": execution.running_count, "log_uri": execution.log_uri or None,
               "condition": condition if status in TERMINAL else None},
    )


def _attempt(entry: dict[str, Any]) -> tuple[str, int] | None:
    """(task index, attempt number) of a log entry, from its Cloud Run labels; None without them."""
    labels = entry.get("labels") or {}
    try:
        return str(labels.get(TASK_INDEX_LABEL, "0")), int(labels[TASK_ATTEMPT_LABEL])
    except (KeyError, TypeError, ValueError):
        return None


def last_attempts(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of the last attempt of each task (entries without attempt labels are kept).

    Cloud Run retries a failed task; the earlier attempts' errors are history, the outcome is
    the last attempt's (a task that succeeded on its second try succeeded).
    """
    latest: dict[str, int] = {}
    for entry in entries:
        found = _attempt(entry)
        if found is not None:
            task, number = found
            latest[task] = max(number, latest.get(task, number))
    kept = []
    for entry in entries:
        found = _attempt(entry)
        if found is None or latest[found[0]] == found[1]:
            kept.append(entry)
    return kept


def log_filter(job: str, executions: list[str], since: str) -> str:
    """The Cloud Logging filter for the logs of several executions of one job, from `since` on;
    every value quoted. The lower time bound is required: the API has no default window
    (sources/logs.py)."""
    names = logs.any_of(f'labels."{EXECUTION_LABEL}"', executions)
    return logs.bounded(
        f'resource.type="cloud_run_job" AND resource.labels.job_name={filter_string(job)} AND {names}', since)


def logs_since(rows: Sequence[Mapping[str, Any]], now: _dt.datetime) -> str:
    """The lower time bound of a log read: the oldest creation among the rows (logs come after it)."""
    return logread.oldest_created(rows, now)


def group_entries(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Log entries per execution name, in the API's order (lines_from_entries puts them in time order)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        name = (entry.get("labels") or {}).get(EXECUTION_LABEL)
        if name:
            groups.setdefault(name, []).append(entry)
    return groups


def conclude(row: Row, analysis: Any) -> TerminalFact:
    """The terminal fact of one execution from the analysis of its logs (pure)."""
    verdict = analysis.verdict
    message = row["extra"].get("condition")  # logs that say nothing: Cloud Run's words
    if row["status"] == "SUCCEEDED":  # Cloud Run says it succeeded: never an error (SPEC)
        if verdict == "succeeded":
            jobs = analysis.jobs
            message = analysis.message or (f"Completed: {jobs} jobs" if jobs is not None else "Completed")
        else:
            message = "Completed"
    elif verdict == "failed" and analysis.message:
        message = analysis.message
    return logread.fact(row, analysis, message)


_OUTCOMES = {"SUCCEEDED": "succeeded", "FAILED": "failed", "TIMEOUT": "failed"}


def links_of(entries: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The Vertex jobs and queue items an execution's logs name, every attempt's (each may launch)."""
    from arrctl.extract import lines_from_entries
    from arrctl.links import runner_links

    return runner_links(lines_from_entries(entries))


def judge_attempts(row: Row, entries: list[dict[str, Any]]) -> Any:
    """The analysis (arrctl.extract.Analysis) of an execution's logs: the last attempt of each task.

    A failed execution with several tasks is judged by the first task whose last attempt failed
    (its siblings' success summaries or shutdown lines do not explain it); otherwise, and for a
    success, by the last attempts of all tasks together.
    """
    from arrctl.extract import analyze, lines_from_entries

    kept = last_attempts(entries)
    outcome = _OUTCOMES.get(row["status"])  # the platform's word is an input, not a guess
    if outcome == "failed":
        tasks = by_task(kept)
        if len(tasks) > 1:  # which task failed the execution only its own log can say
            found = logread.first_failed(tasks)
            if found is not None:
                return found[1]
    return analyze(lines_from_entries(kept), outcome)


def by_task(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Entries per task index, in task order (entries without the label last, under "")."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        found = _attempt(entry)
        groups.setdefault(found[0] if found else "", []).append(entry)
    return dict(sorted(groups.items(), key=lambda item: (item[0] == "", _task_number(item[0]))))


def _task_number(task: str) -> int:
    """A task index label as a number (unparsable ones sort first)."""
    try:
        return int(task)
    except ValueError:
        return -1


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """List executions in every region, newest first; read the logs of newly terminal ones."""
    from arrctl.sources import clients
    from arrctl.sources.gcp_errors import failure_error, in_order, summarize_failures
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
        return newest_first([parse_execution(e, now) for e in executions], limit)

    rows: list[Row] = []
    failures: list[tuple[str, str]] = []
    budget = max(1.0, ctx.deadline_s * REGION_SHARE)
    for region, result, error in clients.fan_out(regions, list_region, budget):
        if error is not None:
            failures.append((region, error))
            continue
        emit.rows(logread.unread_marked(READER, ctx, result or []), part=region)
        rows.extend(result or [])
    if len(failures) == len(regions):
        raise failure_error(in_order(failures, regions), len(regions))
    if len(not_deployed) == len(regions):
        raise SourceError(f"job {config.runner_job} not found in any of the {len(regions)} regions")
    rows = newest_first(rows, limit)
    problems: list[str] = [summarize_failures(in_order(failures, regions), len(regions))] if failures else []
    problems += logread.explain_new(READER, ctx, emit, rows, start + ctx.deadline_s - 0.5, now)
    logread.raise_problems(problems)


READER = logread.Reader(
    source=SOURCE, noun="executions", wants=lambda row: row["status"] in READ_LOGS,
    log_filter=lambda ctx, rows, now: log_filter(ctx.config.runner_job, [r["id"] for r in rows],
                                                 logs_since(rows, now)),
    group=group_entries, judge=lambda row, entries: judge_attempts(row, entries), conclude=conclude,
    words=lambda row: row["extra"].get("condition") if row["message"] is None else None,
    prefix=PLATFORM_PREFIX, links=links_of)
