"""Fake Cloud Run Admin API v2: executions of the runner job, `jobs/J:run` and its operations.

What the Execution resource says is modelled on run_v2 types/execution.py and condition.py:
- the outcome is the `Completed` condition: its state (CONDITION_SUCCEEDED / CONDITION_FAILED
  are terminal) and its reason, `executionReason` NON_ZERO_EXIT_CODE ("A task reached its
  retry limit and the last attempt failed"), CANCELLED, CANCELLING, or a common `reason`
  (a oneof: one of them at most), e.g. PROGRESS_DEADLINE_EXCEEDED ("Timed out waiting for
  completion") for an execution whose task ran out of time;
- tasks retry (`template.maxRetries`, 3 by default: https://cloud.google.com/run/docs/configuring/max-retries);
  `retriedCount` counts the tasks that retried, and a `Retry` condition (common reason
  IMMEDIATE_RETRY, "System will retry immediately.", severity INFO; the condition type a
  retrying resource shows, e.g. `{"type": "Retry", "severity": "Info", "message": "System will
  retry after ..."}` in gcloud's describe output) stays among the conditions;
- `succeededCount`/`failedCount`/`cancelledCount` count tasks by their last attempt: a task
  that failed for good fails the execution and its running siblings are cancelled, so a failed
  multi-task execution has a `cancelledCount` too and is still FAILED.
"""

from __future__ import annotations

import hashlib
import pathlib
import re
import uuid
from typing import Any
from urllib.parse import quote

from arrctl.sandbox import DEMO_REGIONS
from arrctl.sandbox.base import (
    Clock, Request, Response, epoch_at, google_error, int_or_none, list_response, paginate,
    rfc3339,
)
from arrctl.sandbox.scenario import Execution, Launch, World

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
LIVE = {"RUNNING", "CANCELLING"}  # started, not ended
_PREFIX = r"^/v2/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)"
EXECUTIONS = re.compile(_PREFIX + r"/jobs/(?P<job>[^/:]+)/executions(?:/(?P<execution>[^/:]+))?$")
JOB = re.compile(_PREFIX + r"/jobs/(?P<job>[^/:]+)(?P<run>:run)?$")
OPERATION = re.compile(_PREFIX + r"/operations/(?P<operation>[^/:]+)(?P<wait>:wait)?$")
EXECUTION_TYPE = "type.googleapis.com/google.cloud.run.v2.Execution"


def create(scenario_dir: pathlib.Path, clock: Clock) -> "RunService":
    """The service over the scenario's shared world."""
    return RunService(World.shared(scenario_dir, clock))


def _uid(name: str) -> str:
    """A stable uid for a resource name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def _duration_text(seconds: float) -> str:
    """Cloud Run's human duration: 4m52.11s."""
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}m{rest:.2f}s" if minutes else f"{rest:.2f}s"


def _condition(kind: str, state: str, at: float | None, **extra: Any) -> dict[str, Any]:
    """One condition object."""
    cond: dict[str, Any] = {"type": kind, "state": state}
    if at is not None:
        cond["lastTransitionTime"] = rfc3339(at)
    cond.update(extra)
    return cond


def execution_json(world: World, project: str, e: Execution) -> dict[str, Any]:
    """The v2 Execution resource as the API returns it, at the clock's current time."""
    clock, t = world.clock, world.clock.t()
    state = e.timeline.state(t) or "PENDING"
    at = lambda offset: epoch_at(clock, offset)  # noqa: E731
    name = f"projects/{project}/locations/{e.region}/jobs/{world.job}/executions/{e.id}"
    started = e.timeline.first(LIVE | TERMINAL, t)
    finished = e.timeline.first(TERMINAL, t)
    created = e.timeline.created
    body: dict[str, Any] = {
        "name": name, "uid": _uid(name), "generation": "1",
        "labels": {"run.googleapis.com/jobUid": _uid(world.job)},
        "createTime": rfc3339(at(created)),
        "updateTime": rfc3339(at(e.timeline.changed(t))),
        "launchStage": "GA", "job": world.job, "parallelism": e.task_count,
        "taskCount": e.task_count,
        "template": {  # a TaskTemplate here (a Job's template is an ExecutionTemplate)
            "containers": [{"image": world.image}], "maxRetries": e.max_retries, "timeout": "3600s",
            "serviceAccount": f"arr-launcher@{project}.iam.gserviceaccount.com"},
        "reconciling": state not in TERMINAL, "observedGeneration": "1",
        "logUri": (
            "https://console.cloud.google.com/logs/viewer?project=" + project
            + "&advancedFilter=" + quote(
                f'resource.type="cloud_run_job"\nresource.labels.job_name="{world.job}"\n'
                f'resource.labels.location="{e.region}"\n'
                f'labels."run.googleapis.com/execution_name"="{e.id}"', safe="")),
    }
    if started is not None:
        body["startTime"] = rfc3339(at(started))
    if finished is not None:
        body["completionTime"] = rfc3339(at(finished))
    for key, count in _task_counts(e, state, t).items():
        if count:  # zero counts are omitted, as proto3 JSON does
            body[key] = count
    body["conditions"] = _conditions(e, state, started, finished, at, t)
    body["etag"] = '"' + hashlib.sha1(f"{name}/{state}".encode()).hexdigest()[:16] + '"'
    return body


def _task_counts(e: Execution, state: str, t: float) -> dict[str, int]:
    """runningCount, succeededCount, failedCount, cancelledCount and retriedCount at t."""
    counts = {"runningCount": 0, "succeededCount": 0, "failedCount": 0, "cancelledCount": 0,
              "retriedCount": 0}
    for attempts in e.tasks():
        if any(a.number > 0 and a.start <= t for a in attempts):
            counts["retriedCount"] += 1
        if state in LIVE:
            if any(a.start <= t and (a.end is None or t < a.end) for a in attempts):
                counts["runningCount"] += 1
            continue
        if state in TERMINAL and attempts:
            outcome = attempts[-1].outcome if len(e.attempts) > 1 else state
            key = {"SUCCEEDED": "succeededCount", "FAILED": "failedCount",
                   "CANCELLED": "cancelledCount"}.get(outcome)
            if key:
                counts[key] += 1
    if state in LIVE and not counts["runningCount"]:
        counts["runningCount"] = 1  # between two attempts the task is still the execution's
    return counts


def _failed_task(e: Execution) -> int:
    """The index of the task that failed the execution (the first that failed for good)."""
    for index, attempts in enumerate(e.tasks()):
        if attempts and attempts[-1].outcome == "FAILED":
            return index
    return 0


def _conditions(e: Execution, state: str, started: float | None, finished: float | None,
                at: Any, t: float) -> list[dict[str, Any]]:
    """The execution's conditions: Completed first, then ResourcesAvailable, Started and Retry."""
    created = at(e.timeline.created)
    if state == "PENDING":
        return [_condition("Completed", "CONDITION_PENDING", created),
                _condition("ResourcesAvailable", "CONDITION_PENDING", created),
                _condition("Started", "CONDITION_PENDING", created)]
    began = at(started) if started is not None else created
    ready = [_condition("ResourcesAvailable", "CONDITION_SUCCEEDED", began),
             _condition("Started", "CONDITION_SUCCEEDED", began)]
    retried = [a for a in e.attempts if a.outcome == "FAILED" and a.end is not None and a.end <= t
               and any(b.task == a.task and b.number == a.number + 1 for b in e.attempts)]
    if retried:
        last = max(retried, key=lambda a: a.end or 0.0)
        ready.append(_condition("Retry", "CONDITION_SUCCEEDED", at(last.end), reason="IMMEDIATE_RETRY",
                                severity="INFO", message="System will retry immediately."))
    if state == "RUNNING":
        return [_condition("Completed", "CONDITION_RECONCILING", began)] + ready
    if state == "CANCELLING":
        return [_condition("Completed", "CONDITION_RECONCILING", at(e.timeline.changed(t)),
                           executionReason="CANCELLING",
                           message="The execution is being cancelled.")] + ready
    ended = at(finished) if finished is not None else began
    if state == "SUCCEEDED":
        took = (finished or 0.0) - (started or e.timeline.created)
        done = _condition("Completed", "CONDITION_SUCCEEDED", ended,
                          message=f"Execution completed successfully in {_duration_text(took)}.")
    elif state == "CANCELLED":
        done = _condition("Completed", "CONDITION_FAILED", ended, severity="INFO",
                          message="The execution was cancelled.", executionReason="CANCELLED")
    else:
        message = e.message or (
            f"Task {e.id}-task{_failed_task(e)} failed with message: "
            "The container exited with an error.")
        why = {"reason": e.reason} if e.reason else {"executionReason": "NON_ZERO_EXIT_CODE"}
        done = _condition("Completed", "CONDITION_FAILED", ended, severity="ERROR",
                          message=message, **why)
    return [done] + ready


class RunService:
    """Routes of the Cloud Run Admin API v2 that arrctl uses."""

    name = "run"

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response | None:
        """Answer a Cloud Run route, or None."""
        path = request.path
        if not path.startswith("/v2/projects/"):
            return None
        if m := EXECUTIONS.match(path):
            if request.method != "GET":
                return None
            if error := self._check_job(m["project"], m["region"], m["job"]):
                return error
            if m["execution"]:
                return self._get_execution(m["project"], m["region"], m["execution"])
            return self._list_executions(request, m["project"], m["region"])
        if m := JOB.match(path):
            if error := self._check_job(m["project"], m["region"], m["job"]):
                return error
            if m["run"] and request.method == "POST":
                return Response(200, self._operation_json(
                    self.world.launch(m["project"], m["region"]), m["region"]))
            if not m["run"] and request.method == "GET":
                return Response(200, self._job_json(m["project"], m["region"]))
            return None
        if m := OPERATION.match(path):
            if request.method not in ("GET", "POST"):
                return None
            launch = self.world.launches.get(m["operation"])
            if launch is None or launch.execution.region != m["region"]:
                return google_error(404, f"Operation {m['operation']} not found.")
            return Response(200, self._operation_json(launch, m["region"]))
        return None

    def _check_job(self, project: str, region: str, job: str) -> Response | None:
        """404 as the real API says it, for a job or region the scenario does not have."""
        if job != self.world.job or region not in DEMO_REGIONS:
            return google_error(404, (
                f"Resource '{job}' of kind 'JOB' in region '{region}' in project "
                f"'{project}' does not exist."))
        return None

    def _visible(self, region: str) -> list[Execution]:
        """Executions of a region that exist now, newest first."""
        t = self.world.clock.t()
        with self.world.lock:
            found = [e for e in self.world.executions
                     if e.region == region and e.timeline.visible(t)]
        return sorted(found, key=lambda e: e.timeline.created, reverse=True)

    def _list_executions(self, request: Request, project: str, region: str) -> Response:
        """GET .../executions: one page, newest first."""
        return list_response("executions", lambda: paginate(
            self._visible(region), int_or_none(request.arg("pageSize")), request.arg("pageToken"), request.pages,
            default_size=100), lambda e: execution_json(self.world, project, e))

    def _get_execution(self, project: str, region: str, execution: str) -> Response:
        """GET .../executions/E."""
        for e in self._visible(region):
            if e.id == execution:
                return Response(200, execution_json(self.world, project, e))
        return google_error(404, (
            f"Resource '{execution}' of kind 'EXECUTION' in region '{region}' in project "
            f"'{project}' does not exist."))

    def _operation_json(self, launch: Launch, region: str) -> dict[str, Any]:
        """The long-running operation of a run: done with the Execution once it has ended."""
        execution = execution_json(self.world, launch.project, launch.execution)
        op: dict[str, Any] = {
            "name": f"projects/{launch.project}/locations/{region}/operations/{launch.operation}",
            "metadata": {"@type": EXECUTION_TYPE, **execution},
            "done": False,
        }
        state = launch.execution.timeline.state(self.world.clock.t())
        if state in TERMINAL:
            op["done"] = True
            if state == "SUCCEEDED":
                op["response"] = {"@type": EXECUTION_TYPE, **execution}
            else:
                op["error"] = {"code": 2 if state == "FAILED" else 1,
                               "message": execution["conditions"][0].get("message", state)}
        return op

    def _job_json(self, project: str, region: str) -> dict[str, Any]:
        """GET .../jobs/J: the Job with its latest execution."""
        name = f"projects/{project}/locations/{region}/jobs/{self.world.job}"
        executions = self._visible(region)
        body: dict[str, Any] = {
            "name": name, "uid": _uid(name), "generation": "1", "launchStage": "GA",
            "createTime": rfc3339(epoch_at(self.world.clock, -30 * 86400)),
            "updateTime": rfc3339(epoch_at(self.world.clock, -30 * 86400)),
            "template": {"taskCount": 1, "parallelism": 1, "template": {
                "containers": [{"image": self.world.image}], "maxRetries": 3,
                "timeout": "3600s"}},
            "executionCount": len(executions), "observedGeneration": "1",
            "terminalCondition": _condition("Ready", "CONDITION_SUCCEEDED", None),
            "reconciling": False, "etag": '"job-1"',
        }
        if executions:
            latest = execution_json(self.world, project, executions[0])
            body["latestCreatedExecution"] = {
                "name": latest["name"], "createTime": latest["createTime"],
                **({"completionTime": latest["completionTime"]}
                   if "completionTime" in latest else {})}
        return body

