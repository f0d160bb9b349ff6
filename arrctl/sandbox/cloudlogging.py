"""Fake Cloud Logging API v2: `entries:list` over the logs of runner executions (`cloud_run_job`),
Vertex AI custom jobs' replicas (`ml_job`) and builds (`build`); their shapes: sandbox/logentries.py.

Named cloudlogging so that nothing can mistake it for the standard library's `logging`.

What it models of the real service, and where each fact comes from:
- No default time window. A filter without `timestamp>=` searches the whole retention of the
  bucket (`_Default`: 30 days, LogBucket.retentionDays in the v2 REST reference). The 24 h
  default is the Python client's (`google.cloud.logging_v2._helpers._add_defaults_to_filter`,
  called by `Client.list_entries`) and gcloud's, not the API's.
- A search takes time: each request searches one day of the time range (SEARCH_SLICE_S) and
  answers with what it found there, then `nextPageToken` for the rest. So a page may be empty
  and still carry a token: ListLogEntriesResponse.next_page_token, API reference: "If a value
  for next_page_token appears and the entries field is empty, it means that the search found no
  log entries so far but it did not have time to search all the possible log entries. Retry the
  method with this value for page_token to continue the search ... or narrow the time range".
- Reads are rate limited per project (quota `ReadRequestsPerMinutePerProject`, 60 a minute by
  default, shared by everyone in the project): beyond it a 429 RESOURCE_EXHAUSTED whose details
  carry a google.rpc.ErrorInfo (reason RATE_LIMIT_EXCEEDED, metadata quota_limit,
  quota_limit_value, quota_metric, consumer, service) and a google.rpc.Help link — the body
  quoted in snarfed/bridgy-fed#620 and googleapis/nodejs-logging#91. The scenario can lower the
  limit: `"logging": {"reads_per_minute": N}` in scenario.json.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import math
import pathlib
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from arrctl.sandbox import DEMO_PROJECT_NUMBER
from arrctl.sandbox.base import (
    Clock, PageTokenError, Request, Response, epoch_at, google_error, int_or_none, list_response, rfc3339,
)
from arrctl.sandbox.base import parse_rfc3339 as parse_time
from arrctl.sandbox.logentries import BUILD, INGEST_DELAY_S, ML_JOB, build_entries, classify_line, ml_job_entries
from arrctl.sandbox.scenario import Execution, World
from arrctl.sandbox.storage import logging_mode

__all__ = ["LoggingService", "classify_line", "parse_filter", "quota_exceeded", "search_page"]

RESOURCE_TYPE = "cloud_run_job"
# options.logging modes that write nothing to Cloud Logging (cloudbuild_v1 BuildOptions.LoggingMode)
NOT_IN_LOGGING = frozenset({"GCS_ONLY", "NONE"})
EXECUTION_LABEL = "run.googleapis.com/execution_name"
TASK_INDEX_LABEL = "run.googleapis.com/task_index"
TASK_ATTEMPT_LABEL = "run.googleapis.com/task_attempt"
SEVERITIES = {"DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400,
              "ERROR": 500, "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800}
RETENTION_S = 30 * 86400.0  # the _Default bucket keeps logs 30 days
SEARCH_SLICE_S = 86400.0  # how much of the time range one request searches
READS_PER_MINUTE = 60  # quota ReadRequestsPerMinutePerProject, per project
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000


def create(scenario_dir: pathlib.Path, clock: Clock) -> "LoggingService":
    """The service over the scenario's shared world."""
    return LoggingService(World.shared(scenario_dir, clock))


@dataclass(frozen=True)
class Query:
    """What an entries:list filter asks for (the parts this fake honours)."""

    executions: frozenset[str]  # empty: any execution
    job_ids: frozenset[str]  # resource.labels.job_id of ml_job entries; empty: any
    build_ids: frozenset[str]  # resource.labels.build_id of build entries; empty: any
    log_name: str | None
    job: str | None
    location: str | None
    resource_type: str | None
    after: tuple[str, float] | None  # (">" or ">=", epoch)
    before: tuple[str, float] | None  # ("<" or "<=", epoch)
    min_severity: int | None


def parse_filter(text: str | None) -> Query:
    """The honoured parts of a Logging filter, read with regexes over quoted values.

    Execution names, `resource.labels.job_id`s and `resource.labels.build_id`s may be OR-ed, with
    or without parentheses, beside `resource.type`, `resource.labels.job_name`,
    `resource.labels.location`, `logName`, `timestamp` bounds and `severity>=`; anything else is
    ignored.
    """
    text = text or ""
    names = re.findall(r'execution_name"?\s*=\s*"([^"]+)"', text)

    def one(pattern: str) -> str | None:
        found = re.search(pattern, text)
        return found.group(1) if found else None

    after = before = None
    for op, value in re.findall(r'\btimestamp\s*(>=|<=|>|<)\s*"([^"]+)"', text):
        moment = parse_time(value)
        if moment is None:
            continue
        if op.startswith(">"):
            after = (op, moment.timestamp())
        else:
            before = (op, moment.timestamp())
    severity = one(r'\bseverity\s*>=\s*"?([A-Z]+)"?')
    return Query(
        executions=frozenset(names),
        job_ids=frozenset(re.findall(r'resource\.labels\.job_id\s*=\s*"([^"]+)"', text)),
        build_ids=frozenset(re.findall(r'resource\.labels\.build_id\s*=\s*"([^"]+)"', text)),
        log_name=one(r'\blogName\s*=\s*"([^"]+)"'),
        job=one(r'resource\.labels\.job_name\s*=\s*"?([\w.-]+)"?'),
        location=one(r'resource\.labels\.location\s*=\s*"?([\w-]+)"?'),
        resource_type=one(r'resource\.type\s*=\s*"?([\w.-]+)"?'),
        after=after, before=before,
        min_severity=SEVERITIES.get(severity) if severity else None,
    )


def quota_exceeded(project_number: str = DEMO_PROJECT_NUMBER,
                   limit: int = READS_PER_MINUTE) -> Response:
    """The 429 Cloud Logging answers beyond the per-project read quota, with its details."""
    consumer = f"projects/{project_number}"
    message = ("Quota exceeded for quota metric 'Read requests' and limit 'Read requests per "
               "minute' of service 'logging.googleapis.com' for consumer "
               f"'project_number:{project_number}'.")
    return Response(429, {"error": {
        "code": 429, "message": message, "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
             "domain": "googleapis.com",
             "metadata": {"consumer": consumer, "quota_limit": "ReadRequestsPerMinutePerProject",
                          "quota_limit_value": str(limit), "quota_location": "global",
                          "quota_metric": "logging.googleapis.com/read_requests",
                          "service": "logging.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [
                {"description": "Request a higher quota limit.",
                 "url": "https://cloud.google.com/docs/quota#requesting_higher_quota"}]},
        ]}})


class ReadQuota:
    """Read requests per project in the last 60 s of real time (quotas count real minutes)."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._lock = threading.Lock()
        self._calls: dict[str, collections.deque[float]] = {}

    def take(self, project: str) -> bool:
        """Count one read; False when the project has used its minute's quota."""
        now = self.clock()
        with self._lock:
            calls = self._calls.setdefault(project, collections.deque())
            while calls and calls[0] <= now - 60.0:
                calls.popleft()
            if len(calls) >= self.per_minute:
                return False
            calls.append(now)
            return True


def _token(slice_index: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"s:{slice_index}:{offset}".encode()).decode()


def _untoken(token: str | None) -> tuple[int, int]:
    if not token:
        return 0, 0
    try:
        kind, slice_index, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if kind == "s" and int(slice_index) >= 0 and int(offset) >= 0:
            return int(slice_index), int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise PageTokenError(f"Invalid page token: {token!r}")


def search_page(entries: list[dict[str, Any]], start: float, end: float, newest_first: bool,
                page_size: int | None, token: str | None,
                pages: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a search of [start, end] that covers SEARCH_SLICE_S per request.

    `entries` are the matches in answer order. A request answers from one slice of the range
    (the newest first when descending); a slice without matches gives an empty page whose token
    continues the search. The `pages:N` fault caps the page size so the matches span N pages.
    """
    size = min(page_size if page_size and page_size > 0 else DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if pages and pages > 0 and entries:
        size = min(size, max(1, math.ceil(len(entries) / pages)))
    slices = max(1, math.ceil(max(0.0, end - start) / SEARCH_SLICE_S))

    def slice_of(entry: dict[str, Any]) -> int:
        moment = parse_time(entry["timestamp"])
        assert moment is not None
        offset = (end - moment.timestamp()) if newest_first else (moment.timestamp() - start)
        return min(slices - 1, max(0, int(offset // SEARCH_SLICE_S)))

    index, offset = _untoken(token)
    if index >= slices:
        raise PageTokenError(f"Invalid page token: {token!r}")
    in_slice = [e for e in entries if slice_of(e) == index]
    page = in_slice[offset:offset + size]
    if offset + len(page) < len(in_slice):
        return page, _token(index, offset + len(page))
    if index + 1 < slices:
        return page, _token(index + 1, 0)
    return page, None


class LoggingService:
    """POST /v2/entries:list."""

    name = "logging"

    def __init__(self, world: World) -> None:
        self.world = world
        limits = world.meta.get("logging") or {}
        self.quota = ReadQuota(int(limits.get("reads_per_minute", READS_PER_MINUTE)))

    def handle(self, request: Request) -> Response | None:
        """Answer entries:list, or None."""
        if request.path != "/v2/entries:list" or request.method != "POST":
            return None
        try:
            body = request.json()
        except ValueError:
            return google_error(400, "Invalid JSON payload received.")
        names = body.get("resourceNames") or []
        projects = [n.split("/", 1)[1] for n in names if n.startswith("projects/")]
        if not projects:
            return google_error(400, "resourceNames must name at least one project.")
        if not self.quota.take(projects[0]):
            return quota_exceeded(limit=self.quota.per_minute)
        query = parse_filter(body.get("filter"))
        newest_first = "desc" in (body.get("orderBy") or "").lower()
        entries = self._entries(projects[0], query)
        entries.sort(key=lambda e: (e["timestamp"], e["insertId"]), reverse=newest_first)
        now = self.world.clock.now()
        start = query.after[1] if query.after else now - RETENTION_S
        end = min(now, query.before[1]) if query.before else now
        return list_response("entries", lambda: search_page(
            entries, start, end, newest_first, int_or_none(body.get("pageSize")), body.get("pageToken"),
            request.pages))

    def _entries(self, project: str, query: Query) -> list[dict[str, Any]]:
        """Every entry that exists now and matches the query."""
        world, t = self.world, self.world.clock.t()
        kind = query.resource_type
        found: list[dict[str, Any]] = []
        with world.lock:
            executions = [e for e in world.executions if e.timeline.visible(t)]
            jobs = [j for j in world.custom_jobs if j.timeline.visible(t)]
            builds = [b for b in world.builds if b.timeline.visible(t)]
        # a clause on a label only matches the entries that carry it: an execution name, a job_id,
        # a build_id each rule out the other resources' entries
        run_only = bool(query.executions) or query.job is not None or query.location is not None
        if kind in (None, RESOURCE_TYPE) and query.job in (None, world.job) \
                and not (query.job_ids or query.build_ids):
            for execution in executions:
                if query.executions and execution.id not in query.executions:
                    continue
                if query.location and execution.region != query.location:
                    continue
                found.extend(self._execution_entries(project, execution, t))
        if kind in (None, ML_JOB) and not (run_only or query.build_ids):
            for job in jobs:
                if not query.job_ids or job.id in query.job_ids:
                    found.extend(ml_job_entries(world.clock, project, job, t))
        if kind in (None, BUILD) and not (run_only or query.job_ids):
            for build in builds:
                if logging_mode(build) in NOT_IN_LOGGING:  # their log is in the bucket only, or nowhere
                    continue
                if not query.build_ids or build.id in query.build_ids:
                    found.extend(build_entries(world.clock, project, build, t))
        return [entry for entry in found if _matches(entry, query)]

    def _execution_entries(self, project: str, e: Execution, t: float) -> list[dict[str, Any]]:
        """The entries an execution has written by scenario time t, every attempt of every task.

        Each attempt's entries carry the same execution label and their own
        `run.googleapis.com/task_index` and `run.googleapis.com/task_attempt` (strings, from 0),
        as Cloud Run writes them (e.g. `"labels": {"instanceId": ..., "run.googleapis.com/task_attempt":
        "0", "run.googleapis.com/task_index": "0", "run.googleapis.com/execution_name": ...}` in a
        `gcloud logging read` of a job's stdout).
        """
        out = []
        single = len(e.attempts) == 1
        for attempt in e.attempts:
            lines = [(offset, index, text, False)
                     for offset, index, text in (attempt.log.timed() if attempt.log else [])]
            if single:
                ended = e.timeline.first({"FAILED"}, t)
            else:
                ended = attempt.end if attempt.outcome == "FAILED" else None
            if ended is not None:  # Cloud Run's own line when the container exits non-zero
                lines.append((ended, len(lines), "Container called exit(1).", True))
            labels = {EXECUTION_LABEL: e.id, TASK_INDEX_LABEL: str(attempt.task),
                      TASK_ATTEMPT_LABEL: str(attempt.number)}
            key = e.id if single else f"{e.id}/{attempt.task}/{attempt.number}"
            for offset, index, text, system in lines:
                if offset > t:
                    continue
                out.append(self._entry(project, e, labels, f"{key}/{index}", offset, index,
                                       text, system))
        return out

    def _entry(self, project: str, e: Execution, labels: dict[str, str], key: str, offset: float,
               index: int, text: str, system: bool) -> dict[str, Any]:
        """One LogEntry of an execution's attempt."""
        stream, severity, as_json = classify_line(text, index)
        log = "varlog%2Fsystem" if system else stream
        moment = epoch_at(self.world.clock, offset)
        entry: dict[str, Any] = {
            "insertId": hashlib.sha1(key.encode()).hexdigest()[:16],
            "logName": f"projects/{project}/logs/run.googleapis.com%2F{log}",
            "resource": {"type": RESOURCE_TYPE, "labels": {
                "job_name": self.world.job, "location": e.region, "project_id": project}},
            "labels": dict(labels),
            "timestamp": rfc3339(moment),
            "receiveTimestamp": rfc3339(moment + INGEST_DELAY_S),
        }
        if system:
            entry["severity"] = "WARNING"
        elif severity is not None:
            entry["severity"] = severity
        if as_json and not system:
            entry["jsonPayload"] = {"message": text}
        else:
            entry["textPayload"] = text
        return entry


def _matches(entry: dict[str, Any], query: Query) -> bool:
    """Timestamp and severity bounds and the log name of the query."""
    moment = parse_time(entry["timestamp"])
    assert moment is not None
    when = moment.timestamp()
    if query.after and not (when > query.after[1] if query.after[0] == ">"
                            else when >= query.after[1]):
        return False
    if query.before and not (when < query.before[1] if query.before[0] == "<"
                             else when <= query.before[1]):
        return False
    if query.log_name is not None and entry.get("logName") != query.log_name:
        return False
    if query.min_severity is not None:
        if SEVERITIES.get(entry.get("severity", "DEFAULT"), 0) < query.min_severity:
            return False
    return True

