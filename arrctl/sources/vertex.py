"""Source `vertex`: Vertex AI custom jobs in every configured region, newest first.

Only `google.cloud.aiplatform_v1` is imported (the full `google.cloud.aiplatform` SDK costs
1.5 s of import); one client per region, as the real API is served from regional hosts.

ListCustomJobs has no `order_by` and documents no order (aiplatform_v1 types/job_service.py
`ListCustomJobsRequest`; Google's own SDK sorts client-side, google/cloud/aiplatform/base.py
`_list_with_local_order`). So a region is listed with a `create_time>=` filter for the window
shown (`LIST_WINDOWS_S`), every page of it within a bound, and sorted here; a region with more
jobs in that window than the bound is listed again over a narrower window, whose newest jobs
are then complete.

A job newly seen FAILED (or CANCELLED with an error other than the cancellation itself) has its
root error read once from its own logs in Cloud Logging (`sources/logread.py`: one query for all
such jobs of every region, remembered for good). Its replicas log apart, told by
`resource.labels.task_name` (`workerpool0-0`, ...); the first replica to fail decides, and the
message names it. The API's own `error.message` (usually the wrapper "The replica workerpool0-0
exited with a non-zero status of 1. ...") stays in `extra.api_message`, and is the message while
the logs are unread or when they name no root error.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any, Callable

from arrctl.model import Row, TerminalFact, duration_between, iso_z, make_row, newest_first
from arrctl.sources import Emitter, FetchContext, logread, logs

SOURCE = "vertex"
PAGE_SIZE = 100
MAX_PAGES = 5  # per window: at most PAGE_SIZE * MAX_PAGES jobs read per window and region
# The window shown (30 days), then narrower ones for a region too busy to list in full.
LIST_WINDOWS_S = (30 * 86400.0, 86400.0, 3600.0)

STATUS = {
    "JOB_STATE_UNSPECIFIED": "UNKNOWN",
    "JOB_STATE_QUEUED": "QUEUED",
    "JOB_STATE_PENDING": "PENDING",
    "JOB_STATE_RUNNING": "RUNNING",
    "JOB_STATE_SUCCEEDED": "SUCCEEDED",
    "JOB_STATE_FAILED": "FAILED",
    # "From this state the job may only go to either JOB_STATE_SUCCEEDED, JOB_STATE_FAILED or
    # JOB_STATE_CANCELLED" (aiplatform_v1 types/job_state.py), and the SDK counts it among the
    # pending states (google/cloud/aiplatform/jobs.py `_JOB_PENDING_STATES`): not terminal, so not
    # remembered as ended; not RUNNING either, so launch neither succeeds nor fails on it.
    "JOB_STATE_CANCELLING": "UNKNOWN",
    "JOB_STATE_CANCELLED": "CANCELLED",
    "JOB_STATE_PAUSED": "PENDING",  # waiting to be resumed: not running, not finished
    "JOB_STATE_EXPIRED": "TIMEOUT",
    "JOB_STATE_UPDATING": "RUNNING",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "SUCCEEDED",
}
_LIVE = {"RUNNING"}
# Vertex AI custom jobs log as the monitored resource `ml_job`, labelled job_id (the numeric id)
# and task_name (the replica: `workerpool0-0`). The API's own error message links to exactly that:
# "...check the logs: https://console.cloud.google.com/logs/viewer?project=N&resource=ml_job%2Fjob_id%2FID"
# (advancedFilter `resource.type="ml_job" resource.labels.job_id="ID"`, as a failed pipeline's error
# quotes it in public material). gcloud ORs the legacy `cloudml_job` beside it (google-cloud-sdk
# lib/googlecloudsdk/command_lib/ml_engine/log_utils.py `LogFilters`, whose TODO calls the pair a
# transition of AI Platform, Vertex's predecessor); arrctl follows what Vertex itself links to and
# asks for `ml_job` alone (decided: the legacy type is not searched).
LOG_RESOURCE = "ml_job"
REPLICA_LABEL = "task_name"
# older entries carried the replica in the entry's labels (log_utils.py `_GetLabelAttributes`)
_LEGACY_REPLICA_LABELS = ("task_name", "ml.googleapis.com/task_name")
LOG_GRACE_S = 60.0  # after the job's end: the last lines of a replica arrive as it stops
CANCELLED_CODE = 1  # google.rpc.Code CANCELLED: the error every cancelled job carries
_NOT_ENDED = {"JOB_STATE_CANCELLING"}  # still running its course: its duration grows


def _accelerator(machine_spec: Any) -> str | None:
    """`NVIDIA_TESLA_A100 x1`, or None for a CPU-only machine."""
    kind = getattr(machine_spec.accelerator_type, "name", "")
    if not kind or kind == "ACCELERATOR_TYPE_UNSPECIFIED":
        return None
    return f"{kind} x{machine_spec.accelerator_count or 1}"


def job_links(job: Any) -> dict[str, str]:
    """What the job is part of: W&B Launch labels it `wandb-run-id` (vertex_runner.py, WANDB_RUN_ID_KEY)
    and writes WANDB_RUN_ID and WANDB_LAUNCH_TRACE_ID (the run queue item) into its containers'
    env (_project_spec.py `get_env_vars_dict`). Only these names are read from the env: it also
    holds WANDB_API_KEY in plain text."""
    links: dict[str, str] = {}
    env: dict[str, str] = {}
    for pool in (job.job_spec.worker_pool_specs if job.job_spec else []):
        for var in pool.container_spec.env if pool.container_spec else []:
            if var.name in ("WANDB_RUN_ID", "WANDB_LAUNCH_TRACE_ID"):
                env.setdefault(var.name, var.value)
    run = (dict(job.labels) if job.labels else {}).get("wandb-run-id") or env.get("WANDB_RUN_ID")
    if run:
        links["wandb_run"] = run
    if env.get("WANDB_LAUNCH_TRACE_ID"):
        links["queue_item"] = env["WANDB_LAUNCH_TRACE_ID"]
    return links


def parse_custom_job(job: Any, now: _dt.datetime) -> Row:
    """One vertex row from an aiplatform_v1.CustomJob (pure)."""
    from arrctl.sanitize import one_line

    parts = job.name.split("/")
    project = parts[1] if len(parts) > 1 else ""
    region = parts[3] if len(parts) > 3 else None
    job_id = parts[-1]
    raw = getattr(job.state, "name", None) or str(job.state)
    status = STATUS.get(raw, "UNKNOWN")
    created, started, finished = iso_z(job.create_time), iso_z(job.start_time), iso_z(job.end_time)
    if (status in _LIVE or raw in _NOT_ENDED) and finished is None:
        duration = duration_between(started, iso_z(now))
    else:
        duration = duration_between(started, finished)
    message = None
    if status != "SUCCEEDED" and job.error and job.error.message:
        message = one_line(job.error.message)
    error_code = job.error.code if job.error and job.error.code else None
    pools = job.job_spec.worker_pool_specs if job.job_spec else []
    machine = pools[0].machine_spec if pools else None
    return make_row(
        SOURCE, job_id, status, raw_status=raw, region=region, name=job.display_name or None,
        created=created, started=started, finished=finished, duration_s=duration,
        message=message, links=job_links(job),
        url=(f"https://console.cloud.google.com/vertex-ai/locations/{region}/training/"
             f"{job_id}/cpu?project={project}"),
        extra={"machine_type": (machine.machine_type or None) if machine else None,
               "accelerator": _accelerator(machine) if machine else None,
               "display_name": job.display_name or None,
               **({"api_message": message, "error_code": error_code} if message else {})},
    )


def wants_logs(row: Row) -> bool:
    """A job whose logs may say why it ended: FAILED, or CANCELLED with an error of its own."""
    if row["status"] == "FAILED":
        return True
    code = row["extra"].get("error_code")
    return row["status"] == "CANCELLED" and code is not None and code != CANCELLED_CODE


def log_filter(job_ids: list[str], since: str, until: str | None = None) -> str:
    """The Cloud Logging filter of several custom jobs' logs (numeric ids, OR-ed) within [since, until]."""
    return logs.window(f'resource.type="{LOG_RESOURCE}" AND '
                       f'{logs.any_of("resource.labels.job_id", job_ids)}', since, until)


def rows_filter(rows: list[Row], now: _dt.datetime) -> str:
    """The filter of these rows' logs: from the oldest creation to the newest end (and a grace)."""
    return log_filter([r["id"] for r in rows], logread.oldest_created(rows, now),
                      logread.newest_end(rows, LOG_GRACE_S))


def job_of(entry: dict[str, Any]) -> str | None:
    """The job id of an ml_job entry (resource.labels.job_id)."""
    return ((entry.get("resource") or {}).get("labels") or {}).get("job_id")


def replica_of(entry: dict[str, Any]) -> str:
    """The replica an entry is from (resource.labels.task_name, else the legacy entry labels; "" if none)."""
    found = ((entry.get("resource") or {}).get("labels") or {}).get(REPLICA_LABEL)
    labels = entry.get("labels") or {}
    for key in _LEGACY_REPLICA_LABELS:
        found = found or labels.get(key)
    return str(found or "")


def group_entries(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Entries per job id, in the API's order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        job = job_of(entry)
        if job:
            groups.setdefault(str(job), []).append(entry)
    return groups


def by_replica(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Entries per replica, in the API's order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(replica_of(entry), []).append(entry)
    return groups


def _stopped_at(name: str, entries: list[dict[str, Any]]) -> tuple[float, str]:
    """When a replica stopped logging (its newest entry), then its name: the first to fail stops first."""
    return logread.last_entry_at(entries), name


def judge_replicas(entries: list[dict[str, Any]], outcome: str | None = "failed") -> Any:
    """The Analysis of one job's log entries: the first replica to fail decides, and is named.

    Among replicas whose own log fails conclusively, the one that stopped logging first (its
    siblings are torn down after it, or fail waiting for it); failing that, the first whose log
    fails given the job's `outcome`; failing that, all entries together (a replica-less analysis).
    """
    from arrctl.extract import analyze, lines_from_entries

    replicas = by_replica(entries)
    found = logread.first_failed(replicas, _stopped_at)
    if found is None and outcome is not None:
        found = logread.first_failed(replicas, _stopped_at, outcome)
    if found is not None:
        return logread.labelled(found[1], found[0])
    return analyze(lines_from_entries(entries), outcome)


def judge(row: Row, entries: list[dict[str, Any]]) -> Any:
    """The Analysis of a job's logs; a failed job is judged knowing that it failed."""
    return judge_replicas(entries, "failed" if row["status"] == "FAILED" else None)


def conclude(row: Row, analysis: Any) -> TerminalFact:
    """The terminal fact of a job: the root error its logs name, else the API's error message."""
    message = analysis.message if logread.is_specific(analysis) else row["extra"].get("api_message")
    return logread.fact(row, analysis, message)


READER = logread.Reader(
    source=SOURCE, noun="jobs", wants=wants_logs, log_filter=lambda ctx, rows, now: rows_filter(rows, now),
    group=group_entries, judge=judge, conclude=conclude, words=lambda row: row["extra"].get("api_message"))


def window_filter(now: _dt.datetime, window_s: float) -> str:
    """`create_time>="..."` for the jobs created in the last `window_s` seconds (RFC 3339)."""
    since = now - _dt.timedelta(seconds=window_s)
    return f'create_time>="{iso_z(since)}"'


def walk_pages(pager: Any, on_request: Callable[[], None], max_pages: int = MAX_PAGES,
               ) -> tuple[list[Any], bool]:
    """Every custom job of a pager up to `max_pages` pages; (jobs, whether the list ended)."""
    jobs: list[Any] = []
    pages = pager.pages
    page = next(pages)
    for number in range(1, max_pages + 1):
        jobs.extend(page.custom_jobs)
        if not page.next_page_token:
            return jobs, True
        if number == max_pages:
            break
        on_request()
        page = next(pages)
    return jobs, False


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """Custom jobs of every region at once, each region's rows sent as it answers; then the root
    errors of the newly failed ones from their logs."""
    _fetch(ctx, emit, read_logs=True)


def list_jobs(ctx: FetchContext, emit: Emitter) -> None:
    """Custom jobs of every region, without reading any log: what `launch` polls for (it has no
    memory of what was read, and its polls must not spend the project's Logging quota)."""
    _fetch(ctx, emit, read_logs=False)


def _fetch(ctx: FetchContext, emit: Emitter, read_logs: bool) -> None:
    from arrctl.sources import clients
    from arrctl.sources.gcp_errors import failure_error, in_order

    start = time.monotonic()
    emit = clients.LockedEmitter(emit)
    config = ctx.config
    regions = list(config.regions)
    limit = config.vertex_limit
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    emit.plan(regions)

    def list_region(region: str) -> list[Row]:
        client = clients.vertex_job_client(ctx, region)
        seen: dict[str, Any] = {}
        for window in LIST_WINDOWS_S:
            emit.call("vertex")
            pager = client.list_custom_jobs(
                request={"parent": f"projects/{config.project}/locations/{region}",
                         "filter": window_filter(now, window), "page_size": PAGE_SIZE},
                **clients.call_kwargs(ctx))
            jobs, ended = walk_pages(pager, lambda: emit.call("vertex"), MAX_PAGES)
            seen.update((job.name, job) for job in jobs)
            # A list read to its end holds every job of the window: the newest are all known.
            # Cut short, it may miss newer ones anywhere (no order): narrow the window.
            if ended:
                break
        return newest_first([parse_custom_job(j, now) for j in seen.values()], limit)

    rows: list[Row] = []
    failures: list[tuple[str, str]] = []
    for region, result, error in clients.fan_out(regions, list_region,
                                                     logread.listing_budget(ctx.deadline_s)):
        if error is not None:
            failures.append((region, error))
            continue
        emit.rows(logread.unread_marked(READER, ctx, result or []) if read_logs else result or [], part=region)
        rows.extend(result or [])
    problems: list[str] = []
    if len(failures) < len(regions) and not read_logs:
        emit.rows(newest_first(rows, limit))
    elif len(failures) < len(regions):
        # one Logging query for the newly failed jobs of every region (Logging is project-wide)
        problems = logread.explain_new(READER, ctx, emit, newest_first(rows, limit), start + ctx.deadline_s - 0.5, now)
    if failures:
        failure = failure_error(in_order(failures, regions), len(regions))
        if not problems:
            raise failure
        problems.insert(0, str(failure))
    logread.raise_problems(problems)
