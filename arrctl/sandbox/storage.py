"""Fake Cloud Storage (JSON API media downloads): the log objects Cloud Build keeps in a bucket.

What the real services do, and where it is written down:
- A build whose `options.logging` is LEGACY (the default) or GCS_ONLY writes its log to its
  `logsBucket` (cloudbuild_v1 types `BuildOptions.LoggingMode`: "LEGACY: Build logs are stored in
  Cloud Logging and Cloud Storage", "GCS_ONLY: Build logs are stored in Cloud Storage"); the object
  is `log-<build id>.txt` under the bucket's path (`gs://BUCKET/DIR` → `DIR/log-ID.txt`), as gcloud
  finds it (google-cloud-sdk lib/googlecloudsdk/api_lib/cloudbuild/logs.py `GCSLogTailer.FromBuild`).
  Its text is the build's log lines, one per line, as gcloud prints them.
- google-cloud-storage downloads an object from `{api_endpoint}/download/storage/v1/b/BUCKET/o/
  OBJECT?alt=media` (google/cloud/storage/blob.py `_DOWNLOAD_URL_TEMPLATE`) with a `Range` header
  for `start`/`end` (`bytes=-N` for a negative start: storage/_media/_download.py `add_bytes_range`);
  the server answers 206 with `Content-Range` as HTTP/1.1 says
  (https://cloud.google.com/storage/docs/json_api/v1/objects/get, "Range" in the JSON API's
  request headers).
- A missing object is 404 `No such object: BUCKET/OBJECT` with `errors[].reason` `notFound`; a
  caller without the permission gets 403 `<caller> does not have storage.objects.get access to
  the Google Cloud Storage object. Permission 'storage.objects.get' denied on resource (or it may
  not exist).` (quoted in spaceml-org/STARCOP#6 and salesforce/HIVE#15; reason `forbidden` in
  Superbalist/laravel-google-cloud-storage#14).
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

from arrctl.sandbox import DEMO_PROJECT_NUMBER
from arrctl.sandbox.base import Clock, Request, Response, ranged
from arrctl.sandbox.logentries import written_lines
from arrctl.sandbox.scenario import Build, World

MEDIA = re.compile(r"^/download/storage/v1/b/(?P<bucket>[^/]+)/o/(?P<object>.+)$")
DEFAULT_BUCKET = f"gs://{DEMO_PROJECT_NUMBER}.cloudbuild-logs.googleusercontent.com"
IN_BUCKET = frozenset({"LOGGING_UNSPECIFIED", "LEGACY", "GCS_ONLY"})  # the modes that write the bucket log
CALLER = f"{DEMO_PROJECT_NUMBER}-compute@developer.gserviceaccount.com"


def create(scenario_dir: pathlib.Path, clock: Clock) -> "StorageService":
    """The service over the scenario's shared world."""
    return StorageService(World.shared(scenario_dir, clock))


def logging_mode(build: Build) -> str:
    """The build's `options.logging` (the scenario's `logging`, LEGACY when it says none)."""
    return str(build.fixture.get("logging") or "LEGACY")


def logs_bucket(build: Build) -> str:
    """The build's `logsBucket` (the scenario's, else the project's default log bucket)."""
    return str(build.fixture.get("logsBucket") or DEFAULT_BUCKET)


def log_object(build: Build) -> tuple[str, str]:
    """(bucket, object name) of the build's log, as gcloud derives them from `logsBucket`."""
    path = logs_bucket(build).removeprefix("gs://")
    bucket, _, folder = path.partition("/")
    return bucket, f"{folder.rstrip('/') + '/' if folder else ''}log-{build.id}.txt"


def log_text(build: Build, t: float) -> bytes:
    """The bucket log of a build as written by scenario time t."""
    return "".join(f"{text}\n" for _offset, _index, text in written_lines(build.log, t)).encode()


def _error(code: int, message: str, reason: str) -> Response:
    """The JSON API's error body (its `errors[]` list as well as the code and message)."""
    return Response(code, {"error": {"code": code, "message": message,
                                     "errors": [{"message": message, "domain": "global", "reason": reason}]}})


def forbidden(request: Request) -> Response | None:
    """The 403 of a caller without storage.objects.get (the `storage:status:403` fault)."""
    if not MEDIA.match(request.path):
        return None
    return _error(403, f"{CALLER} does not have storage.objects.get access to the Google Cloud Storage "
                       "object. Permission 'storage.objects.get' denied on resource (or it may not exist).",
                  "forbidden")


class StorageService:
    """The media download route of the Cloud Storage JSON API, for build logs."""

    name = "storage"

    def __init__(self, world: World) -> None:
        self.world = world

    def handle(self, request: Request) -> Response | None:
        """Answer a media download, or None."""
        found = MEDIA.match(request.path)
        if not found or request.method != "GET":
            return None
        wanted = (found["bucket"], found["object"])
        t = self.world.clock.t()
        with self.world.lock:
            builds = [b for b in self.world.builds if b.timeline.visible(t)]
        for build in builds:
            if logging_mode(build) in IN_BUCKET and log_object(build) == wanted:
                return ranged(log_text(build, t), request.headers.get("range"), "text/plain",
                              # reason as https://cloud.google.com/storage/docs/json_api/v1/status-codes lists it
                              _error(416, "The requested range cannot be satisfied.", "requestedRangeNotSatisfiable"))
        name = "/".join(wanted)
        return _error(404, f"No such object: {name}", "notFound")


def build_fields(build: Build) -> dict[str, Any]:
    """The Build resource's fields about where its log goes (`logsBucket`, `options.logging`)."""
    return {"logsBucket": logs_bucket(build), "logging": logging_mode(build)}
