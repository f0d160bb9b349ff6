"""Fake Cloud Build API v1: builds (global and regional routes, status filter, paging, get).

The legacy route `GET /v1/projects/P/builds` lists the `global` region only, whatever else the
request says; each region's builds are listed by `GET /v1/projects/P/locations/R/builds`
(API reference, projects.builds.list: "This method only lists builds in the "global" region
when using the legacy resource path projects/{projectId}/builds. For all regions, use the
regional resource path", https://cloud.google.com/build/docs/api/reference/rest/v1/projects.builds/list).
The client picks the legacy route whenever `project_id` is set, sending `parent` as a mere query
parameter (cloudbuild_v1 transports/rest_base.py `_BaseListBuilds._get_http_options`, tried in
order by google.api_core.path_template.transcode).
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

from arrctl.sandbox import DEMO_PROJECT_NUMBER
from arrctl.sandbox.base import (
    Clock, Request, Response, epoch_at, google_error, int_or_none, list_response, paginate, rfc3339,
)
from arrctl.sandbox.scenario import Build, World
from arrctl.sandbox.storage import build_fields

BUILDS = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)(?:/locations/(?P<region>[^/]+))?/builds"
    r"(?:/(?P<build>[^/:]+))?$")
TERMINAL = {"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"}
STATUS_IN_FILTER = re.compile(r'\bstatus\s*=\s*"?([A-Z_]+)"?')


def create(scenario_dir: pathlib.Path, clock: Clock) -> "BuildService":
    """The service over the scenario's shared world."""
    return BuildService(World.shared(scenario_dir, clock))


def _steps(build: Build, status: str) -> list[dict[str, Any]]:
    """The build's steps with statuses that follow the build's own."""
    steps = build.fixture.get("steps") or [{"name": "gcr.io/cloud-builders/docker",
                                            "args": ["build", "."]}]
    failed = int(build.fixture.get("failedStep", len(steps) - 1))
    out = []
    for index, raw in enumerate(steps):
        step = {k: v for k, v in raw.items() if k != "status"}
        if status in ("PENDING", "QUEUED"):
            step_status = status
        elif status == "WORKING":
            step_status = "WORKING" if index == 0 else "QUEUED"
        elif status == "SUCCESS":
            step_status = "SUCCESS"
        elif status in ("FAILURE", "TIMEOUT", "CANCELLED", "INTERNAL_ERROR"):
            step_status = ("SUCCESS" if index < failed
                           else {"FAILURE": "FAILURE", "TIMEOUT": "TIMEOUT",
                                 "INTERNAL_ERROR": "INTERNAL_ERROR"}.get(status, "CANCELLED")
                           if index == failed else "QUEUED")
        else:
            step_status = "STATUS_UNKNOWN"
        step["status"] = step_status
        out.append(step)
    return out


def build_json(world: World, project: str, build: Build) -> dict[str, Any]:
    """The v1 Build resource as the API returns it, at the clock's current time."""
    t = world.clock.t()
    status = build.timeline.state(t) or "QUEUED"
    at = lambda offset: rfc3339(epoch_at(world.clock, offset))  # noqa: E731
    region = build.region
    console = (f"https://console.cloud.google.com/cloud-build/builds/{build.id}"
               if region == "global" else
               f"https://console.cloud.google.com/cloud-build/builds;region={region}/{build.id}")
    fixture = build.fixture
    logs = build_fields(build)  # where its log goes: the bucket, Cloud Logging or both (sandbox/storage.py)
    body: dict[str, Any] = {
        "name": f"projects/{DEMO_PROJECT_NUMBER}/locations/{region}/builds/{build.id}",
        "id": build.id, "projectId": project, "status": status,
        "source": {"storageSource": {"bucket": f"{project}_cloudbuild",
                                     "object": f"source/{build.id[:8]}.tgz"}},
        "steps": _steps(build, status),
        "createTime": at(build.timeline.created),
        "timeout": fixture.get("timeout", "1200s"), "queueTtl": "3600s",
        "logsBucket": logs["logsBucket"],
        "options": {"machineType": "E2_HIGHCPU_8", "logging": logs["logging"]},
        "logUrl": f"{console}?project={DEMO_PROJECT_NUMBER}",
        "tags": list(fixture.get("tags", [])),
        "serviceAccount": (f"projects/{project}/serviceAccounts/"
                           f"{DEMO_PROJECT_NUMBER}-compute@developer.gserviceaccount.com"),
    }
    for key in ("substitutions", "images", "buildTriggerId"):
        if key in fixture:
            body[key] = fixture[key]
    if fixture.get("approvalRequired"):
        # A trigger that requires approval creates its build PENDING until someone approves it
        # (https://cloud.google.com/build/docs/automating-builds/approve-builds); the Build says
        # so in `approval` (cloudbuild_v1 types BuildApproval: state PENDING, APPROVED, ...).
        body["approval"] = {"state": "PENDING" if status == "PENDING" else "APPROVED",
                            "config": {"approvalRequired": True}}
    started = build.timeline.first({"WORKING"}, t)
    finished = build.timeline.first(TERMINAL, t)
    if started is not None:
        body["startTime"] = at(started)
    if finished is not None:
        body["finishTime"] = at(finished)
        if fixture.get("statusDetail"):
            body["statusDetail"] = fixture["statusDetail"]
        if status == "FAILURE" and fixture.get("failureInfo"):
            body["failureInfo"] = fixture["failureInfo"]
    return body


def wanted_statuses(text: str | None) -> set[str]:
    """Statuses named by a list filter (`status="QUEUED" OR status="WORKING"`); empty = all."""
    return set(STATUS_IN_FILTER.findall(text or ""))


class BuildService:
    """Routes of the Cloud Build API that arrctl uses."""

    name = "build"

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response | None:
        """Answer a builds route, or None."""
        m = BUILDS.match(request.path)
        if not m or request.method != "GET":
            return None
        # the legacy route is the global region's, even with a `parent` query parameter
        region = m["region"] or "global"
        t = self.world.clock.t()
        builds = [b for b in self.world.builds if b.region == region and b.timeline.visible(t)]
        builds.sort(key=lambda b: b.timeline.created, reverse=True)
        if m["build"]:
            for build in builds:
                if build.id == m["build"]:
                    return Response(200, build_json(self.world, m["project"], build))
            return google_error(404, f'build "{m["build"]}" not found')
        statuses = wanted_statuses(request.arg("filter"))
        rendered = [build_json(self.world, m["project"], b) for b in builds]
        if statuses:
            rendered = [b for b in rendered if b["status"] in statuses]
        return list_response("builds", lambda: paginate(rendered, int_or_none(request.arg("pageSize")),
                                                        request.arg("pageToken"), request.pages, default_size=50))
