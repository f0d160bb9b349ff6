"""Source `builds`: Cloud Build builds, the active ones and the most recent finished ones.

Builds live in a location: `global`, or a region (private pools, 2nd-gen repositories,
regional triggers). The legacy path `projects/P/builds` lists the global ones only (API
reference, projects.builds.list), so every location is listed through its regional path:
`global` and each configured region, each one a part. Two list calls per location run at once
(active and recent); rows carry `extra.table` so the text renderer prints two tables.

A build newly seen FAILURE, TIMEOUT or INTERNAL_ERROR has its log read once from Cloud Logging
(`sources/logread.py`: one query for all such builds of every location, remembered for good),
where Cloud Build writes every build's log (`resource.type="build"`, `resource.labels.build_id`,
log `cloudbuild`), unless the build's `options.logging` keeps it in its `logsBucket` only
(GCS_ONLY): then the tail of its log object is read from Cloud Storage, once, in the same read
(`sources/bucketlog.py`). A build that logs nowhere (NONE) keeps the API's words. The specific cause (pip's or
docker's error above "build step 0 ... failed") replaces `statusDetail` only when the extractor
finds one; the API's own text stays in `extra.api_message`.
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import Any

from arrctl.model import Row, TerminalFact, duration_between, iso_z, make_row, newest_first
from arrctl.sources import Emitter, FetchContext, bucketlog, logread, logs

SOURCE = "builds"
ACTIVE_PAGE_SIZE = 50
# PENDING: created but not queued yet, e.g. waiting for approval (cloudbuild_v1 Build.Status;
# https://cloud.google.com/build/docs/automating-builds/approve-builds). It is active too.
ACTIVE_FILTER = 'status="PENDING" OR status="QUEUED" OR status="WORKING"'
TERMINAL = ("SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED")
RECENT_FILTER = " OR ".join(f'status="{s}"' for s in TERMINAL)

STATUS = {
    "STATUS_UNKNOWN": "UNKNOWN",
    "PENDING": "PENDING",
    "QUEUED": "QUEUED",
    "WORKING": "RUNNING",
    "SUCCESS": "SUCCEEDED",
    "FAILURE": "FAILED",
    "INTERNAL_ERROR": "FAILED",
    "TIMEOUT": "TIMEOUT",
    "CANCELLED": "CANCELLED",
    "EXPIRED": "CANCELLED",  # expired in the queue (queueTtl): it never ran
}
_WAITING = {"QUEUED", "PENDING"}
READ_LOGS = frozenset({"FAILURE", "TIMEOUT", "INTERNAL_ERROR"})  # raw statuses whose log says why
NO_LOGS = "NONE"  # options.logging of a build that keeps no log anywhere
LOG_RESOURCE = "build"
LOG_GRACE_S = 60.0  # after the build's end: its last lines are written as it stops


def _short_image(image: str) -> str:
    """`gcr.io/p/trainer:tag` → `trainer:tag`."""
    return image.rsplit("/", 1)[-1]


def parse_build(build: Any, now: _dt.datetime) -> Row:
    """One builds row from a cloudbuild_v1.Build (pure)."""
    from arrctl.sanitize import one_line

    raw = getattr(build.status, "name", None) or str(build.status)
    status = STATUS.get(raw, "UNKNOWN")
    parts = build.name.split("/") if build.name else []
    region = parts[parts.index("locations") + 1] if "locations" in parts[:-1] else "global"
    created, started = iso_z(build.create_time), iso_z(build.start_time)
    finished = iso_z(build.finish_time)
    now_z = iso_z(now)
    if status == "RUNNING" and finished is None:
        duration = duration_between(started, now_z)
    else:
        duration = duration_between(started, finished)
    message = None
    if status in ("FAILED", "TIMEOUT", "UNKNOWN"):
        detail = build.failure_info.detail if build.failure_info else ""
        message = one_line(detail or build.status_detail) or None
    substitutions = dict(build.substitutions)
    images = [_short_image(i) for i in build.images]
    trigger = substitutions.get("TRIGGER_NAME") or build.build_trigger_id or None
    project = build.project_id or (parts[1] if len(parts) > 1 else "")
    logging = getattr(build.options.logging, "name", None) if build.options else None
    return make_row(
        SOURCE, build.id, status, raw_status=raw, region=region,
        name=trigger or (images[0] if images else None),
        created=created, started=started, finished=finished, duration_s=duration,
        message=message,
        url=build.log_url or f"https://console.cloud.google.com/cloud-build/builds/{build.id}?project={project}",
        extra={
            "table": "active" if raw in _WAITING or raw == "WORKING" else "recent",
            "queued_s": duration_between(created, now_z) if raw in _WAITING else None,
            "images": images,
            "trigger": trigger,
            "branch": substitutions.get("BRANCH_NAME") or None,
            "commit": substitutions.get("SHORT_SHA") or None,
            "logging": logging or None,
            "log_object": bucketlog.uri(build.logs_bucket, build.id) if logging == bucketlog.BUCKET_ONLY else None,
            **({"api_message": message} if message else {}),
        },
    )


def log_filter(project: str | None, build_ids: list[str], since: str, until: str | None = None) -> str:
    """The Cloud Logging filter of several builds' logs (OR-ed ids) within [since, until].

    As gcloud reads a build's log (google-cloud-sdk lib/googlecloudsdk/api_lib/cloudbuild/logs.py
    `GCLLogTailer.Print`): `logName="projects/P/logs/cloudbuild" AND resource.type="build" AND
    resource.labels.build_id="ID"`, bounded below by the build's creation.
    """
    name = logs.filter_string(f"projects/{project}/logs/cloudbuild")
    return logs.window(f'logName={name} AND resource.type="{LOG_RESOURCE}" AND '
                       f'{logs.any_of("resource.labels.build_id", build_ids)}', since, until)


def rows_filter(project: str | None, rows: list[Row], now: _dt.datetime) -> str:
    """The filter of these rows' logs: from the oldest creation to the newest end (and a grace)."""
    return log_filter(project, [r["id"] for r in rows], logread.oldest_created(rows, now),
                      logread.newest_end(rows, LOG_GRACE_S))


def wants_logs(row: Row) -> bool:
    """Whether a build's log may say why it ended so: it failed, and it kept a log."""
    return row["raw_status"] in READ_LOGS and row["extra"].get("logging") != NO_LOGS


def read_logs(ctx: FetchContext, emit: Emitter, rows: list[Row], deadline_at: float, now: _dt.datetime,
              clock: Any = time.monotonic) -> logs.LogRead:
    """The logs of these builds: ONE Cloud Logging query for those that log there, and the bucket
    object of each GCS_ONLY one; a read cut on either side is cut (what was reached is kept)."""
    in_bucket = [(r["id"], r["extra"]["log_object"]) for r in rows if r["extra"].get("log_object")]
    in_logging = [r for r in rows if not r["extra"].get("log_object")]
    read = logs.LogRead()
    if in_logging:
        read = logs.read_entries(ctx, emit, rows_filter(ctx.config.project, in_logging, now),
                                 deadline_at=deadline_at, clock=clock)
    if in_bucket:
        more = bucketlog.read_all(ctx, emit, in_bucket, deadline_at, clock)
        read.entries.extend(more.entries)
        read.calls += more.calls
        if more.cut is not None and read.cut is None:  # only the bucket logs may miss lines
            read.cut, read.reason, read.error = more.cut, more.reason, more.error
            read.unreached = more.unreached
        elif more.cut is not None:
            read.unreached = None
    return read


def group_entries(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Entries per build id (resource.labels.build_id), in the API's order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        build = ((entry.get("resource") or {}).get("labels") or {}).get("build_id")
        if build:
            groups.setdefault(str(build), []).append(entry)
    return groups


def judge_build(entries: list[dict[str, Any]], outcome: str | None = "failed") -> Any:
    """The Analysis of one build's log (every step's lines, `Step #N: ` prefixes and all)."""
    from arrctl.extract import analyze, lines_from_entries

    return analyze(lines_from_entries(entries), outcome)


def conclude(row: Row, analysis: Any) -> TerminalFact:
    """The terminal fact of a build: the specific cause its log names, else the API's statusDetail."""
    message = analysis.message if logread.is_specific(analysis) else row["extra"].get("api_message")
    return logread.fact(row, analysis, message)


READER = logread.Reader(
    source=SOURCE, noun="builds", wants=wants_logs, read=read_logs,
    log_filter=lambda ctx, rows, now: rows_filter(ctx.config.project, rows, now),
    group=group_entries, judge=lambda row, entries: judge_build(entries), conclude=conclude,
    words=lambda row: row["extra"].get("api_message"))


def locations(regions: list[str]) -> list[str]:
    """`global` and every configured region, once each, in that order."""
    return list(dict.fromkeys(["global", *regions]))


def list_request(project: str | None, location: str, part: str, page_size: int) -> dict[str, Any]:
    """The ListBuilds request of one location and table.

    `parent` only, never `project_id` too: with `project_id` set the client takes the legacy
    path `/v1/projects/P/builds` (the first http rule of cloudbuild_v1 transports/rest_base.py
    `_BaseListBuilds`, chosen by google.api_core.path_template.transcode) and the server lists
    the global region, whatever `parent` says.
    """
    return {"parent": f"projects/{project}/locations/{location}",
            "filter": RECENT_FILTER if part == "recent" else ACTIVE_FILTER,
            "page_size": page_size}


def merge_locations(per_location: list[list[Row]], recent: int) -> list[Row]:
    """Every location's rows as one set: all active builds, the `recent` newest finished ones."""
    rows = [row for part in per_location for row in part]
    active = newest_first([r for r in rows if r["extra"]["table"] == "active"])
    finished = newest_first([r for r in rows if r["extra"]["table"] == "recent"])[:recent]
    return active + finished


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """The active builds (all of them) and the `builds_recent` latest finished ones, every location."""
    from arrctl.sources import clients
    from arrctl.sources.gcp_errors import failure_error, in_order

    start = time.monotonic()
    emit = clients.LockedEmitter(emit)
    config = ctx.config
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    places = locations(list(config.regions))
    emit.plan(places)

    def list_part(job: tuple[str, str]) -> list[Row]:
        location, part = job
        client = clients.build_client(ctx)
        want = config.builds_recent if part == "recent" else None
        request = list_request(config.project, location, part, want or ACTIVE_PAGE_SIZE)
        emit.call("build")
        pager = client.list_builds(request=request, **clients.call_kwargs(ctx))
        builds = clients.take_pages(pager, lambda: emit.call("build"),
                                    lambda n: want is not None and n >= want, "builds")
        rows = [parse_build(b, now) for b in builds]
        # The filter is the server's business; the table a row lands in is decided here.
        rows = newest_first([r for r in rows if r["extra"]["table"] == part])
        return rows[:want] if want is not None else rows

    jobs = [(location, part) for location in places for part in ("active", "recent")]
    answered: dict[str, dict[str, list[Row]]] = {}
    failed: dict[str, str] = {}
    for (location, part), result, error in clients.fan_out(jobs, list_part,
                                                           logread.listing_budget(ctx.deadline_s)):
        if error is not None:
            failed.setdefault(location, error)
            continue
        tables = answered.setdefault(location, {})
        tables[part] = result or []
        if len(tables) == 2 and location not in failed:  # a location is whole with both tables
            emit.rows(logread.unread_marked(READER, ctx, tables["active"] + tables["recent"]), part=location)
    complete = [answered[p]["active"] + answered[p]["recent"] for p in places
                if p not in failed and len(answered.get(p, {})) == 2]
    problems: list[str] = []
    if complete:
        # one Logging query for the newly failed builds of every location
        problems = logread.explain_new(READER, ctx, emit, merge_locations(complete, config.builds_recent),
                                       start + ctx.deadline_s - 0.5, now)
    if failed:
        failure = failure_error(in_order(list(failed.items()), places), len(places), noun="locations")
        if not problems:
            raise failure
        problems.insert(0, str(failure))
    logread.raise_problems(problems)
