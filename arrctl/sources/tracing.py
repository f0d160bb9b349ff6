"""Worker-side look-ups of `arrctl trace`: one hop's system asked about the ids already known.

Each runs in its own killable worker (Refresher.run_many), regions at once, and emits rows as the
sources do (with their `links`), so the pure chain builder (arrctl/trace.py) works on rows only.
- `probe_runner`: the newest executions of every region (and any named one), and the logs of
  those whose links are not remembered yet, read with ONE Cloud Logging query: what each
  execution's agent took from the queue and which Vertex jobs it created (arrctl/links.py).
- `probe_vertex`: custom jobs by id (GetCustomJob in every region) and by the W&B run they are
  labelled with (ListCustomJobs filtered on `labels.wandb-run-id`, as AIP-160 filters labels).
- `probe_wandb`: W&B runs by id (`Api.run`, through sources/wandb_client.py), their config's `_wandb`
  holding the queue item.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

from arrctl.model import Row, apply_facts, by_id, newest_first
from arrctl.sources import Emitter, FetchContext, SourceError, logread, logs

RUNNER_LIMIT = 10  # executions listed per trace (newest first): the agent of a recent launch is among them
LOG_SHARE = 0.5  # of the deadline for listing; the rest is for the one log read


def probe_runner(ctx: FetchContext, emit: Emitter) -> None:
    """Executions with their links: remembered ones from `known_links`, the others from their logs."""
    from google.api_core import exceptions as api_exceptions

    from arrctl.sources import clients
    from arrctl.links import with_remembered
    from arrctl.sources import runner
    from arrctl.sources.gcp_errors import failure_error, in_order
    from arrctl.sources.launcher import find_execution

    start = time.monotonic()
    emit = clients.LockedEmitter(emit)
    config = ctx.config
    regions = list(config.regions)
    limit = max(RUNNER_LIMIT, config.runner_limit)
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)

    def list_region(region: str) -> list[Row]:
        parent = f"projects/{config.project}/locations/{region}/jobs/{config.runner_job}"
        emit.call("run")
        try:
            pager = clients.run_executions_client(ctx).list_executions(
                request={"parent": parent, "page_size": runner.PAGE_SIZE}, **clients.call_kwargs(ctx))
        except api_exceptions.NotFound:  # not deployed in this region
            return []
        executions = clients.take_pages(pager, lambda: emit.call("run"), lambda n: n >= limit, "executions")
        return [runner.parse_execution(e, now) for e in executions]

    rows: list[Row] = []
    failures: list[tuple[str, str]] = []
    for region, result, error in clients.fan_out(regions, list_region, max(1.0, ctx.deadline_s * LOG_SHARE)):
        if error is not None:
            failures.append((region, error))
        rows.extend(result or [])
    if len(failures) == len(regions):
        raise failure_error(in_order(failures, regions), len(regions))
    rows = newest_first(rows, limit)
    listed = {r["id"] for r in rows}
    for name in ctx.extra.get("executions") or []:
        if name not in listed:
            found = find_execution(ctx, emit, name, now)
            if found is not None:
                rows.append(found)
    rows = with_remembered(rows, ctx.extra.get("known_links") or {})
    emit.rows(rows)  # what is known already, should the log read be cut short
    unread = [r for r in rows if not r["links"] and r["status"] != "PENDING"]
    if unread and ctx.logging_hold_s <= 0:
        read = logs.read_entries(ctx, emit, runner.READER.log_filter(ctx, unread, now),
                                 deadline_at=start + ctx.deadline_s - 0.5)
        emit.log_reads({"called": read.calls > 0, "rate_limited": read.cut is logs.Cut.RATE_LIMITED})
        groups = runner.group_entries(read.entries)
        rows = [{**r, "links": runner.links_of(groups[r["id"]])} if r["id"] in groups and not r["links"] else r
                for r in rows]  # type: ignore[misc]
        ended = [r for r in unread if r["status"] in runner.READ_LOGS and r["id"] not in ctx.known_terminal]
        facts = logread.explain_rows(runner.READER, ended, groups, read.complete, now)
        if facts:
            emit.facts(facts)
        rows = apply_facts(rows, by_id(facts))
        emit.rows(rows)
        if not read.complete:
            raise SourceError(f"logs: {read.reason}")
    elif unread:
        raise SourceError(f"logs: Cloud Logging reads held {ctx.logging_hold_s:.0f}s more after a 429")
    if failures:
        raise failure_error(in_order(failures, regions), len(regions))


def probe_vertex(ctx: FetchContext, emit: Emitter) -> None:
    """The custom jobs named by id (`jobs`) or labelled with a W&B run id (`runs`), every region at once."""
    from google.api_core import exceptions as api_exceptions

    from arrctl.sources import clients
    from arrctl.sources.gcp_errors import failure_error, in_order
    from arrctl.sources.runner import filter_string
    from arrctl.sources.vertex import parse_custom_job, walk_pages

    emit = clients.LockedEmitter(emit)
    config = ctx.config
    regions = list(config.regions)
    jobs, runs = list(ctx.extra.get("jobs") or []), list(ctx.extra.get("runs") or [])
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)

    def look(region: str) -> list[Row]:
        client = clients.vertex_job_client(ctx, region)
        parent = f"projects/{config.project}/locations/{region}"
        found: list[Any] = []
        for job in jobs:
            emit.call("vertex")
            try:
                found.append(client.get_custom_job(request={"name": f"{parent}/customJobs/{job}"},
                                                   **clients.call_kwargs(ctx)))
            except (api_exceptions.NotFound, api_exceptions.InvalidArgument):  # not in this region
                pass
        for run in runs:
            emit.call("vertex")
            pager = client.list_custom_jobs(
                request={"parent": parent, "filter": f"labels.wandb-run-id={filter_string(run)}",
                         "page_size": 100}, **clients.call_kwargs(ctx))
            found.extend(walk_pages(pager, lambda: emit.call("vertex"), 2)[0])
        return [parse_custom_job(job, now) for job in found]

    rows: list[Row] = []
    failures: list[tuple[str, str]] = []
    for region, result, error in clients.fan_out(regions, look, max(1.0, ctx.deadline_s - 0.5)):
        if error is not None:
            failures.append((region, error))
        rows.extend(result or [])
    emit.rows(rows)
    if failures:
        raise failure_error(in_order(failures, regions), len(regions))


def probe_wandb(ctx: FetchContext, emit: Emitter) -> None:
    """The W&B runs named in `runs`, each by its path (one Run query each, config included)."""
    from arrctl.sources.finders import find_wandb_run
    from arrctl.sources.wandb_client import wandb_client
    from arrctl.sources.wandb_common import TERMINAL_STATES

    rows: list[Row] = []
    with wandb_client(ctx, emit) as client:
        for run_id in ctx.extra.get("runs") or []:
            found = find_wandb_run(client, emit, run_id)  # None: no such run, no failure
            if found is not None:
                run, row = found
                source = "completed" if (run.state or "").lower() in TERMINAL_STATES else "active"
                rows.append({**row, "source": source})  # type: ignore[misc]
    emit.rows(rows)
