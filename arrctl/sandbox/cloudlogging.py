"""Fake Cloud Logging API v2: `entries:list` over the runner executions' logs.

Named cloudlogging so that nothing can mistake it for the standard library's `logging`.
"""

from __future__ import annotations

import hashlib
import pathlib
import re
from dataclasses import dataclass
from typing import Any

from arrctl.model import parse_time
from arrctl.sandbox.base import (
    Clock, PageTokenError, Request, Response, epoch_at, google_error, int_or_none, paginate,
    rfc3339,
)
from arrctl.sandbox.scenario import Execution, World

RESOURCE_TYPE = "cloud_run_job"
EXECUTION_LABEL = "run.googleapis.com/execution_name"
TASK_INDEX_LABEL = "run.googleapis.com/task_index"
TASK_ATTEMPT_LABEL = "run.googleapis.com/task_attempt"
SEVERITIES = {"DEFAULT": 0, "DEBUG": 100, "INFO": 200, "NOTICE": 300, "WARNING": 400,
              "ERROR": 500, "CRITICAL": 600, "ALERT": 700, "EMERGENCY": 800}
INGEST_DELAY_S = 0.4  # receiveTimestamp - timestamp
_ERROR_LINE = re.compile(
    r"^(Traceback |  File |\s+raise |wandb: ERROR|🚨|❌|ERROR[: ]|E\d{4} |"
    r"[\w.]*(Error|Exception|Exceeded|Denied|Unavailable|NotFound|Exhausted)\b)")
_WARNING_LINE = re.compile(r"^(wandb: WARNING|WARNING[: ]|\S*Warning: |Retrying )")
_STDERR_LINE = re.compile(r"^(wandb: |Retrying |\S*Warning: |.*\d+%\|)")


def create(scenario_dir: pathlib.Path, clock: Clock) -> "LoggingService":
    """The service over the scenario's shared world."""
    return LoggingService(World.shared(scenario_dir, clock))


@dataclass(frozen=True)
class Query:
    """What an entries:list filter asks for (the parts this fake honours)."""

    executions: frozenset[str]  # empty: any execution
    job: str | None
    location: str | None
    resource_type: str | None
    after: tuple[str, float] | None  # (">" or ">=", epoch)
    before: tuple[str, float] | None  # ("<" or "<=", epoch)
    min_severity: int | None


def parse_filter(text: str | None) -> Query:
    """The honoured parts of a Logging filter, read with regexes over quoted values.

    Execution names may be OR-ed, with or without parentheses, beside `resource.type`,
    `resource.labels.job_name`, `resource.labels.location`, `timestamp` bounds and
    `severity>=`; anything else is ignored.
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
        job=one(r'resource\.labels\.job_name\s*=\s*"?([\w.-]+)"?'),
        location=one(r'resource\.labels\.location\s*=\s*"?([\w-]+)"?'),
        resource_type=one(r'resource\.type\s*=\s*"?([\w.-]+)"?'),
        after=after, before=before,
        min_severity=SEVERITIES.get(severity) if severity else None,
    )


def classify_line(text: str, index: int) -> tuple[str, str | None, bool]:
    """(stream, severity or None, as jsonPayload) of a log line, deterministic.

    Cloud Run marks stderr ERROR whatever it says (so severity alone proves nothing), leaves
    some stdout entries without severity, and a few lines arrive as jsonPayload.
    """
    stripped = text.strip()
    if _ERROR_LINE.match(stripped) or _STDERR_LINE.match(stripped):
        return "stderr", "ERROR" if not _WARNING_LINE.match(stripped) else "WARNING", False
    if index % 7 == 3:
        return "stdout", None, False
    if index % 9 == 4:
        return "stdout", "INFO", True
    return "stdout", "DEFAULT", False


class LoggingService:
    """POST /v2/entries:list."""

    name = "logging"

    def __init__(self, world: World) -> None:
        self.world = world

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
        query = parse_filter(body.get("filter"))
        newest_first = "desc" in (body.get("orderBy") or "").lower()
        entries = self._entries(projects[0], query)
        entries.sort(key=lambda e: (e["timestamp"], e["insertId"]), reverse=newest_first)
        try:
            page, token = paginate(entries, int_or_none(body.get("pageSize")),
                                   body.get("pageToken"),
                                   request.pages, default_size=50, max_size=1000)
        except PageTokenError as exc:
            return google_error(400, str(exc))
        answer: dict[str, Any] = {}
        if page:
            answer["entries"] = page
        if token:
            answer["nextPageToken"] = token
        return Response(200, answer)

    def _entries(self, project: str, query: Query) -> list[dict[str, Any]]:
        """Every entry that exists now and matches the query."""
        world, t = self.world, self.world.clock.t()
        if query.resource_type not in (None, RESOURCE_TYPE) or query.job not in (None, world.job):
            return []
        with world.lock:
            executions = [e for e in world.executions if e.timeline.visible(t)]
        found: list[dict[str, Any]] = []
        for execution in executions:
            if query.executions and execution.id not in query.executions:
                continue
            if query.location and execution.region != query.location:
                continue
            for entry in self._execution_entries(project, execution, t):
                if _matches(entry, query):
                    found.append(entry)
        return found

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
    """Timestamp and severity bounds of the query."""
    moment = parse_time(entry["timestamp"])
    assert moment is not None
    when = moment.timestamp()
    if query.after and not (when > query.after[1] if query.after[0] == ">"
                            else when >= query.after[1]):
        return False
    if query.before and not (when < query.before[1] if query.before[0] == "<"
                             else when <= query.before[1]):
        return False
    if query.min_severity is not None:
        if SEVERITIES.get(entry.get("severity", "DEFAULT"), 0) < query.min_severity:
            return False
    return True

