"""What the fake Google services answer when the caller lacks a permission (the `SERVICE:status:403` fault).

Each route needs one IAM permission on one resource (the permissions are those of the API
references' method pages, e.g. ListExecutions needs `run.executions.list` on the job). A denial
has the shape the real APIs send, as quoted in public reports:
`{"error": {"code": 403, "message": "Permission 'P' denied on resource '//SERVICE/RESOURCE' (or it
may not exist).", "status": "PERMISSION_DENIED", "details": [{"@type":
"type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": SERVICE,
"metadata": {"permission": P, "resource": RESOURCE}}]}}` — e.g. Artifact Registry's
`Permission 'artifactregistry.repositories.create' denied on resource
'//artifactregistry.googleapis.com/projects/.../locations/us-central1' (or it may not exist).` with
that ErrorInfo (terraform-google-modules issue output), Gemini Code Assist's
`cloudaicompanion.companions.generateChat` denial with the same details (gemini-cli issue output),
Vertex AI's `Permission 'aiplatform.endpoints.predict' denied on resource
'//aiplatform.googleapis.com/projects/...'` (BerriAI/litellm#8597). api_core reads the ErrorInfo
into the exception's `reason`, `domain` and `metadata` (google/api_core/exceptions.py
`format_http_response_error`).
"""

from __future__ import annotations

import re
from typing import Any

from arrctl.sandbox.base import Request, Response

_RUN = r"^/v2/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)"
# (service, method, path pattern, permission, resource template from the pattern's groups)
_ROUTES: tuple[tuple[str, str, re.Pattern[str], str, str], ...] = (
    ("run", "GET", re.compile(_RUN + r"/jobs/(?P<job>[^/:]+)/executions$"), "run.executions.list",
     "projects/{project}/locations/{region}/jobs/{job}"),
    ("run", "GET", re.compile(_RUN + r"/jobs/(?P<job>[^/:]+)/executions/(?P<id>[^/:]+)$"), "run.executions.get",
     "projects/{project}/locations/{region}/jobs/{job}/executions/{id}"),
    ("run", "GET", re.compile(_RUN + r"/jobs/(?P<job>[^/:]+)$"), "run.jobs.get",
     "projects/{project}/locations/{region}/jobs/{job}"),
    ("run", "POST", re.compile(_RUN + r"/jobs/(?P<job>[^/:]+):run$"), "run.jobs.run",
     "projects/{project}/locations/{region}/jobs/{job}"),
    ("run", "GET", re.compile(_RUN + r"/operations/(?P<id>[^/:]+)$"), "run.operations.get",
     "projects/{project}/locations/{region}/operations/{id}"),
    ("vertex", "GET", re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/customJobs$"),
     "aiplatform.customJobs.list", "projects/{project}/locations/{region}"),
    ("vertex", "GET", re.compile(r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/customJobs/(?P<id>[^/:]+)$"),
     "aiplatform.customJobs.get", "projects/{project}/locations/{region}/customJobs/{id}"),
    ("build", "GET", re.compile(r"^/v1/projects/(?P<project>[^/]+)(?:/locations/(?P<region>[^/]+))?/builds$"),
     "cloudbuild.builds.list", "projects/{project}"),
    ("build", "GET", re.compile(r"^/v1/projects/(?P<project>[^/]+)(?:/locations/(?P<region>[^/]+))?/builds/(?P<id>[^/:]+)$"),
     "cloudbuild.builds.get", "projects/{project}/builds/{id}"),
)
DOMAINS = {"run": "run.googleapis.com", "vertex": "aiplatform.googleapis.com", "build": "cloudbuild.googleapis.com",
           "logging": "logging.googleapis.com"}


def required(service: str, request: Request) -> tuple[str, str] | None:
    """(permission, resource name) the request needs, or None for a route not modelled here."""
    if service == "logging" and request.path == "/v2/entries:list":
        try:
            names = (request.json() or {}).get("resourceNames") or []
        except ValueError:
            names = []
        return "logging.logEntries.list", str(names[0]) if names else "projects/unknown"
    for owner, method, pattern, permission, resource in _ROUTES:
        found = pattern.match(request.path) if owner == service and method == request.method else None
        if found:
            return permission, resource.format(**{k: v or "" for k, v in found.groupdict().items()})
    return None


def permission_denied(service: str, request: Request) -> Response | None:
    """The real 403 body for a request whose permission is missing (None: not a modelled route)."""
    needed = required(service, request)
    if needed is None:
        return None
    permission, resource = needed
    domain = DOMAINS[service]
    body: dict[str, Any] = {"error": {
        "code": 403,
        "message": f"Permission '{permission}' denied on resource '//{domain}/{resource}' (or it may not exist).",
        "status": "PERMISSION_DENIED",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED",
                     "domain": domain, "metadata": {"permission": permission, "resource": resource}}],
    }}
    return Response(403, body)
