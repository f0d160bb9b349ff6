"""Fake Vertex AI API v1: custom jobs per region (list with filter and paging, get)."""

from __future__ import annotations

import pathlib
import re
from typing import Any

from arrctl.sandbox import DEMO_PROJECT_NUMBER
from arrctl.sandbox.base import (
    Clock, PageTokenError, Request, Response, epoch_at, google_error, int_or_none, paginate,
    rfc3339,
)
from arrctl.model import parse_time as parse_rfc3339
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


def job_filter(text: str | None):  # type: ignore[no-untyped-def]
    """A predicate over CustomJob JSON for the filter forms arrctl may send; others ignored.

    Honoured: state=S (OR-ed), create_time>|>=|<|<= "RFC3339", display_name="X" or :"X",
    labels.K="V". Different fields are AND-ed.
    """
    text = text or ""
    states = set(re.findall(r'\bstate\s*=\s*"?(JOB_STATE_[A-Z_]+)"?', text))
    times = [(op, parse_rfc3339(value)) for op, value in
             re.findall(r'\bcreate_time\s*(>=|<=|>|<)\s*"([^"]+)"', text)]
    names = re.findall(r'\bdisplay_name\s*([=:])\s*"([^"]*)"', text)
    labels = re.findall(r'\blabels\.([\w-]+)\s*=\s*"([^"]*)"', text)

    def keep(job: dict[str, Any]) -> bool:
        if states and job["state"] not in states:
            return False
        created = parse_rfc3339(job["createTime"])
        for op, moment in times:
            if moment is None:
                continue
            ok = {">": created > moment, ">=": created >= moment,
                  "<": created < moment, "<=": created <= moment}[op]
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
        jobs.sort(key=lambda j: j.timeline.created, reverse=True)
        rendered = [custom_job_json(self.world, m["project"], j) for j in jobs]
        if m["job"]:
            for job in rendered:
                if job["name"].endswith(f"/customJobs/{m['job']}"):
                    return Response(200, job)
            return google_error(404, f'The CustomJob "{m["job"]}" does not exist.')
        keep = job_filter(request.arg("filter"))
        try:
            page, token = paginate([j for j in rendered if keep(j)],
                                   int_or_none(request.arg("pageSize")), request.arg("pageToken"),
                                   request.pages, default_size=100)
        except PageTokenError as exc:
            return google_error(400, str(exc))
        body: dict[str, Any] = {}
        if page:
            body["customJobs"] = page
        if token:
            body["nextPageToken"] = token
        return Response(200, body)

