"""Worker-side look-ups of `arrctl explain`: one Vertex AI job, build or W&B run by its id, and its own logs.

Each runs in a killable worker (the supervisor's, like the runner's `launcher.explain_execution`),
looks the item up in every place it may be at once (regions, build locations), reads its own logs
(Cloud Logging through sources/logs.py, with the source's own filter builder and judge; a W&B
run's console log through sources/wandb_logs.py) and sends one fact: the extractor's analysis
(`Analysis.to_dict()`) plus `found`, `where` (the region or location), `entries` (how much log
was read) and `note` (why the logs may be incomplete). An item that does not exist is
`{"found": false, "searched": [...]}`.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any, Callable

from arrctl.model import Row
from arrctl.sources import Emitter, FetchContext, SourceError, logs

EXPLAIN_MAX_PAGES = 40  # explain reads one item's whole log, within its deadline
EXPLAIN_TAIL_BYTES = 1024 * 1024  # of a W&B run's console log
LOOKUP_SHARE = 0.6  # of the deadline for finding the item (as the sources list regions); the rest is for its logs
_OUTCOMES = {"SUCCEEDED": "succeeded", "FAILED": "failed", "TIMEOUT": "failed"}


def verdict_of(analysis: dict[str, Any], row: Row, words: str | None, whose: str, note: str | None) -> dict[str, Any]:
    """The analysis, or the platform's own words when the logs said nothing (said so)."""
    if analysis["verdict"] == "unknown" and words:
        outcome = _OUTCOMES.get(row["status"], "unknown")
        return {**analysis, "verdict": outcome, "message": f"{words} ({whose} words)",
                "category": analysis["category"] or (_category(words) if outcome == "failed" else None)}
    return analysis


def _category(message: str) -> str:
    from arrctl.extract import categorize

    return categorize(message)


def find_first(places: list[str], get: Callable[[str], Row | None], budget_s: float) -> tuple[str, Row] | None:
    """The first place (region, location) where `get` finds the item, asked everywhere at once."""
    from arrctl.sources import clients

    errors = []
    for place, row, error in clients.fan_out(places, get, budget_s):
        if row is not None:
            return place, row
        if error is not None:
            errors.append(f"{place}: {error}")
    if errors and len(errors) == len(places):
        raise SourceError(errors[0] if len(errors) == 1 else f"{errors[0]} (and {len(errors) - 1} more)")
    return None


def read_logs(ctx: FetchContext, emit: Emitter, text: str, deadline_at: float, what: str) -> tuple[logs.LogRead, str | None]:
    """One bounded read of an item's logs (sources/logs.py), and a note when it did not finish."""
    if ctx.logging_hold_s > 0:  # another process's 429 counts for us too: the quota is the project's
        return logs.LogRead(), f"logs of {what} not read: Cloud Logging reads held {ctx.logging_hold_s:.0f}s more after a 429"
    read = logs.read_entries(ctx, emit, text, deadline_at=deadline_at, max_pages=EXPLAIN_MAX_PAGES)
    emit.log_reads({"called": read.calls > 0, "rate_limited": read.cut is logs.Cut.RATE_LIMITED})
    return read, None if read.complete else f"logs of {what} not fully read: {read.reason}"


def find_in(ctx: FetchContext, places: list[str], get: Callable[[str], Any], parse: Callable[[Any], Row]
            ) -> tuple[str, Row] | None:
    """(place, row) of the item `get(place)` fetches (None where the API says NotFound), asked in
    every one of `places` at once."""
    from google.api_core import exceptions as api_exceptions

    def look(place: str) -> Row | None:
        try:
            return parse(get(place))
        except api_exceptions.NotFound:
            return None

    return find_first(places, look, max(1.0, ctx.deadline_s * LOOKUP_SHARE))


def find_vertex_job(ctx: FetchContext, emit: Emitter, job_id: str, regions: list[str],
                    now: _dt.datetime) -> tuple[str, Row] | None:
    """(region, row) of the Vertex AI custom job `job_id`, asked in every one of `regions` at once."""
    from arrctl.sources import clients
    from arrctl.sources import vertex

    def get(region: str) -> Any:
        emit.call("vertex")
        name = f"projects/{ctx.config.project}/locations/{region}/customJobs/{job_id}"
        return clients.vertex_job_client(ctx, region).get_custom_job(request={"name": name}, **clients.call_kwargs(ctx))

    return find_in(ctx, regions, get, lambda job: vertex.parse_custom_job(job, now))


def find_build(ctx: FetchContext, emit: Emitter, build_id: str, places: list[str],
               now: _dt.datetime) -> tuple[str, Row] | None:
    """(location, row) of the build `build_id`, asked in every one of `places` at once."""
    from arrctl.sources import clients
    from arrctl.sources import builds

    def get(location: str) -> Any:
        emit.call("build")
        name = f"projects/{ctx.config.project}/locations/{location}/builds/{build_id}"
        return clients.build_client(ctx).get_build(request={"name": name}, **clients.call_kwargs(ctx))

    return find_in(ctx, places, get, lambda build: builds.parse_build(build, now))


def explain_found(ctx: FetchContext, emit: Emitter, found: tuple[str, Row] | None, places: list[str], *,
                  what: str, judge: Callable[[Row, list[Any]], Any], whose: str, deadline_at: float,
                  log_filter: Callable[[Row], str] | None = None,
                  read: Callable[[Row], tuple[logs.LogRead, str | None]] | None = None) -> None:
    """The one fact of an item looked up in `places`: not found, or the analysis of its own logs
    (the platform's words, `extra.api_message`, when the logs say nothing). Its logs are one
    Cloud Logging read of `log_filter`, or what `read` gives (a build whose log is in a bucket)."""
    if found is None:
        emit.results([{"found": False, "searched": places}])
        return
    place, row = found
    if read is not None:
        got, note = read(row)
    elif log_filter is not None:
        got, note = read_logs(ctx, emit, log_filter(row), deadline_at, what)
    else:
        raise ValueError("explain_found needs log_filter or read")
    analysis = verdict_of(judge(row, got.entries).to_dict(), row, row["extra"].get("api_message"), whose, note)
    emit.results([{**analysis, "found": True, "where": place, "entries": len(got.entries), "note": note}])


def explain_vertex_job(ctx: FetchContext, emit: Emitter) -> None:
    """A Vertex AI custom job by its numeric id (in its region, or every configured one) and its replicas' logs."""
    from arrctl.sources import clients
    from arrctl.sources import logread, vertex

    started = time.monotonic()
    job_id = ctx.extra["id"]
    regions = [ctx.extra["region"]] if ctx.extra.get("region") else list(ctx.config.regions)
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    explain_found(ctx, emit, find_vertex_job(ctx, emit, job_id, regions, now), regions, what=f"job {job_id}",
                  log_filter=lambda row: vertex.log_filter([job_id], logread.oldest_created([row], now),
                                                           logread.newest_end([row], vertex.LOG_GRACE_S)),
                  judge=vertex.judge, whose="Vertex AI's", deadline_at=started + ctx.deadline_s - 0.5)


def explain_build(ctx: FetchContext, emit: Emitter) -> None:
    """A Cloud Build build by its id (in its location, or `global` and every configured region) and its log."""
    from arrctl.sources import bucketlog, builds, clients, logread

    started = time.monotonic()
    config = ctx.config
    build_id = ctx.extra["id"]
    places = [ctx.extra["region"]] if ctx.extra.get("region") else builds.locations(list(config.regions))
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    deadline_at = started + ctx.deadline_s - 0.5

    def read(row: Row) -> tuple[logs.LogRead, str | None]:
        if row["extra"].get("log_object"):  # GCS_ONLY: its log is in its bucket alone (sources/bucketlog.py)
            found = bucketlog.read_all(ctx, emit, [(build_id, row["extra"]["log_object"])], deadline_at, time.monotonic)
            return found, None if found.complete else f"log of build {build_id} not read: {found.reason}"
        text = builds.log_filter(config.project, [build_id], logread.oldest_created([row], now),
                                 logread.newest_end([row], builds.LOG_GRACE_S))
        return read_logs(ctx, emit, text, deadline_at, f"build {build_id}")

    explain_found(ctx, emit, find_build(ctx, emit, build_id, places, now), places, what=f"build {build_id}",
                  read=read, judge=lambda row, entries: builds.judge_build(entries, _OUTCOMES.get(row["status"])),
                  whose="Cloud Build's", deadline_at=deadline_at)


def find_wandb_run(client: Any, emit: Emitter, run_id: str) -> tuple[Any, Row] | None:
    """(the wandb Run, its row) of run `run_id` in the client's entity/project; None when there is none."""
    from arrctl.sources.wandb_client import _chain
    from arrctl.sources.wandb_common import node_of, parse_run

    where = f"{client.entity}/{client.project}"
    emit.call("wandb")
    try:
        run = client.api.run(f"{where}/{run_id}")
    except Exception as exc:  # noqa: BLE001 — anything but "no such run" is the client's failure
        from wandb.apis.public.runs import RunNotFoundError

        # wandb raises RunNotFoundError ("Could not find run ...", also for a missing project),
        # wrapped in CommError by its normalize_exceptions (wandb/apis/normalize.py)
        if not any(isinstance(item, RunNotFoundError) for item in _chain(exc)) \
                and not isinstance(getattr(exc, "exc", None), RunNotFoundError):
            raise
        return None
    return run, parse_run(node_of(run), time.time(), source="completed", entity=client.entity,
                          project=client.project, url=run.url)


def explain_wandb_run(ctx: FetchContext, emit: Emitter) -> None:
    """A W&B run by its id (in the configured or given entity/project) and the tail of its console log."""
    from arrctl.sources import wandb_logs
    from arrctl.sources.wandb_client import wandb_client

    started = time.monotonic()
    run_id = ctx.extra["id"]
    with wandb_client(ctx, emit, ctx.extra.get("entity"), ctx.extra.get("project")) as client:
        where = f"{client.entity}/{client.project}"
        found = find_wandb_run(client, emit, run_id)
        if found is None:
            emit.results([{"found": False, "searched": [where]}])
            return
        run, row = found
        node = wandb_logs.file_node(run, emit)
        tail = wandb_logs.Tail()
        if node is not None:
            budget = max(0.5, started + ctx.deadline_s - 0.5 - time.monotonic())
            tail = wandb_logs.fetch_tail(node, base_url=client.base_url, api_key=client.api_key,
                                         timeout_s=min(client.timeout_s, budget), emit=emit,
                                         tail_bytes=EXPLAIN_TAIL_BYTES)
    note = tail.cut or (f"run {run_id} has no console log (output.log)" if tail.text is None else None)
    analysis = wandb_logs.analyse(tail.text or "", _OUTCOMES.get(row["status"])).to_dict()
    analysis = verdict_of(analysis, row, row["message"], "W&B's", note)
    emit.results([{**analysis, "found": True, "where": where, "entries": len((tail.text or "").splitlines()),
                 "note": note}])
