"""Fake Vertex AI API v1: custom jobs per region (list with filter and paging, get).

ListCustomJobs has no `order_by` and documents no order (aiplatform_v1 types/job_service.py
`ListCustomJobsRequest`: parent, filter, page_size, page_token, read_mask; Google's own SDK
sorts client-side: google/cloud/aiplatform/base.py `_list_with_local_order`, "Provides
client-side sorting when a list API doesn't support `order_by`"). So this fake answers in no
particular order (a stable shuffle by a hash of the job id), across pages too.
"""

from __future__ import annotations

import pathlib
import re
import hashlib
from typing import Any

from arrctl.sandbox import DEMO_PROJECT_NUMBER
from arrctl.sandbox.base import (
    Clock, Request, Response, epoch_at, google_error, int_or_none, list_response, paginate, parse_rfc3339,
    rfc3339,
)
from arrctl.sandbox.scenario import CustomJob, World

JOBS = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/customJobs"
    r"(?:/(?P<job>[^/:]+))?$")
TERMINAL = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
            "JOB_STATE_EXPIRED", "JOB_STATE_PARTIALLY_SUCCEEDED"}
IMAGE = "us-docker.pkg.dev/{project}/arr-coc-registry/arr-trainer:latest"


def create(scenario_dir: pathlib.Path, clock: Clock) -> "VertexService":
    """The service over the scenario's shared world."""
    return VertexService(World.shared(scenario_dir, clock))


def custom_job_json(world: World, project: str, job: CustomJob) -> dict[str, Any]:
    """The v1 CustomJob resource as the API returns it, at the clock's current time."""
    t = world.clock.t()
    state = job.timeline.state(t) or "JOB_STATE_QUEUED"
    at = lambda offset: rfc3339(epoch_at(world.clock, offset))  # noqa: E731
    body: dict[str, Any] = {
        # the real API names resources by project number, whatever id the caller used
        "name": f"projects/{DEMO_PROJECT_NUMBER}/locations/{job.region}/customJobs/{job.id}",
        "displayName": job.display_name,
        "jobSpec": {"workerPoolSpecs": [{
            "machineSpec": {"machineType": job.machine_type,
                            **({"acceleratorType": job.accelerator_type,
                                "acceleratorCount": job.accelerator_count}
                               if job.accelerator_count else {})},
            "replicaCount": "1",
            "diskSpec": {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 100},
            "containerSpec": {"imageUri": IMAGE.format(project=project),
                              **({"env": [dict(e) for e in job.env]} if job.env else {})},
        }]},
        "state": state,
        "createTime": at(job.timeline.created),
        "updateTime": at(job.timeline.changed(t)),
        "labels": dict(job.labels),
    }
    started = job.timeline.first({"JOB_STATE_RUNNING"}, t)
    ended = job.timeline.first(TERMINAL, t)
    if started is not None:
        body["startTime"] = at(started)
    if ended is not None:
        body["endTime"] = at(ended)
    if state == "JOB_STATE_FAILED":
        body["error"] = job.error or {"code": 13, "message": "Internal error occurred."}
    elif state == "JOB_STATE_CANCELLED":
        body["error"] = {"code": 1, "message": "CANCELED"}
    return body


class FilterError(ValueError):
    """A list filter the real API would refuse with 400 INVALID_ARGUMENT."""


INVALID_FILTER = "Provided filter is not valid."  # Vertex AI's words for a malformed filter
_CREATE_TIME = re.compile(r'\bcreate_time\s*(>=|<=|!=|>|<|=)\s*("[^"]*"?|\S*)')
_RFC3339 = re.compile(r'^"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"$')


def no_particular_order(jobs: list[CustomJob]) -> list[CustomJob]:
    """The jobs in an order that says nothing about their age (stable, so pages hold together)."""
    return sorted(jobs, key=lambda j: hashlib.sha1(f"{j.region}/{j.id}".encode()).hexdigest())


def _create_times(text: str) -> list[tuple[str, Any]]:
    """(operator, datetime) of every create_time comparison; FilterError when one is malformed.

    `create_time` must be in RFC 3339 format (ListCustomJobsRequest.filter), a quoted string as
    in its example `create_time>"2021-05-18T00:00:00Z"`; anything else is refused with 400
    "Provided filter is not valid." (Vertex AI troubleshooting, "Error when filtering the list":
    https://cloud.google.com/vertex-ai/generative-ai/docs/agent-engine/troubleshooting/manage).
    """
    found = []
    for op, value in _CREATE_TIME.findall(text):
        moment = parse_rfc3339(value[1:-1]) if _RFC3339.match(value) else None
        if moment is None:
            raise FilterError(INVALID_FILTER)
        found.append((op, moment))
    return found


def job_filter(text: str | None):  # type: ignore[no-untyped-def]
    """A predicate over CustomJob JSON for the filter forms arrctl may send; others ignored.

    Honoured: state=S (OR-ed), create_time>|>=|<|<=|=|!= "RFC3339" (malformed: FilterError),
    display_name="X" or :"X", labels.K="V". Different fields are AND-ed.
    """
    text = text or ""
    states = set(re.findall(r'\bstate\s*=\s*"?(JOB_STATE_[A-Z_]+)"?', text))
    times = _create_times(text)
    names = re.findall(r'\bdisplay_name\s*([=:])\s*"([^"]*)"', text)
    labels = re.findall(r'\blabels\.([\w-]+)\s*=\s*"([^"]*)"', text)

    def keep(job: dict[str, Any]) -> bool:
        if states and job["state"] not in states:
            return False
        created = parse_rfc3339(job["createTime"])
        for op, moment in times:
            ok = {">": created > moment, ">=": created >= moment, "<": created < moment,
                  "<=": created <= moment, "=": created == moment, "!=": created != moment}[op]
            if not ok:
                return False
        if names and not any(
                (job["displayName"] == value) if op == "=" else (value in job["displayName"])
                for op, value in names):
            return False
        return all(job["labels"].get(key) == value for key, value in labels)

    return keep


class VertexService:
    """Routes of the Vertex AI JobService that arrctl uses."""

    name = "vertex"

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response | None:
        """Answer a custom jobs route, or None."""
        m = JOBS.match(request.path)
        if not m or request.method != "GET":
            return None
        t = self.world.clock.t()
        with self.world.lock:
            jobs = [j for j in self.world.custom_jobs
                    if j.region == m["region"] and j.timeline.visible(t)]
        rendered = [custom_job_json(self.world, m["project"], j) for j in no_particular_order(jobs)]
        if m["job"]:
            for job in rendered:
                if job["name"].endswith(f"/customJobs/{m['job']}"):
                    return Response(200, job)
            return google_error(404, f'The CustomJob "{m["job"]}" does not exist.')
        try:
            keep = job_filter(request.arg("filter"))
        except FilterError as exc:
            return google_error(400, str(exc))
        return list_response("customJobs", lambda: paginate(
            [j for j in rendered if keep(j)], int_or_none(request.arg("pageSize")), request.arg("pageToken"),
            request.pages, default_size=100))

