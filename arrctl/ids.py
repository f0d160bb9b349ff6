"""What an ID|URL names (pure): `explain` and `logs` take the same ones.

`parse_target` tells the kinds apart by their shapes:
- a Cloud Run execution: an RFC 1035 label (`vertex-ai-launcher-x7k2p`), its resource name
  `projects/P/locations/R/jobs/J/executions/NAME`, or its console URL
  `https://console.cloud.google.com/run/jobs/executions/details/R/NAME/tasks?project=P` (a runner row's);
- a Vertex AI custom job: its numeric id, `projects/P/locations/R/customJobs/ID`, or its console
  URL `https://console.cloud.google.com/vertex-ai/locations/R/training/ID[/cpu]?project=P` (the
  shape arrctl's own vertex rows link to, and google-cloud-aiplatform's tests log); the SDK's
  `_dashboard_uri` now prints `/agent-platform/locations/R/training/ID` (aiplatform/jobs.py), and
  copied console links also read `/training/customJobs/ID`: all are accepted;
- a Cloud Build build: its UUID, `projects/P/locations/R/builds/ID`, or its console URL
  `https://console.cloud.google.com/cloud-build/builds[;region=R]/ID?project=P` (the API's
  `logUrl`);
- a W&B run: `ENTITY/PROJECT/ID`, `ENTITY/PROJECT/runs/ID`, its URL `https://wandb.ai/ENTITY/PROJECT/runs/ID`,
  or a bare id of lowercase letters and digits (as W&B generates them). A bare id that is also an
  execution name is looked up as both, at once.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit


class Kind(enum.Enum):
    """What an id names."""

    EXECUTION = "execution"
    VERTEX_JOB = "Vertex AI job"
    BUILD = "build"
    WANDB_RUN = "W&B run"


class NotAnId(ValueError):
    """ID|URL names nothing arrctl knows; the message is the one-line usage error."""


@dataclass(frozen=True)
class Target:
    """What to look up: the kinds the text may be, the id, and what the text itself says of where."""

    kinds: tuple[Kind, ...]
    id: str
    region: str | None = None
    project: str | None = None  # a Google project named by the URL
    entity: str | None = None  # W&B
    wandb_project: str | None = None


# Cloud Run names: lowercase letters, digits and hyphens, starting with a letter, not ending with
# a hyphen, at most 63 characters (an RFC 1035 label).
EXECUTION_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
EXECUTION_RESOURCE = re.compile(r"projects/[^/]+/locations/([^/]+)/jobs/[^/]+/executions/([^/]+)")
EXECUTION_CONSOLE = re.compile(r"/run/jobs/executions/details/([^/]+)/([^/]+)(?:/.*)?")  # a runner row's url
VERTEX_ID = re.compile(r"[0-9]{1,20}")
VERTEX_RESOURCE = re.compile(r"projects/([^/]+)/locations/([^/]+)/customJobs/([0-9]{1,20})")
VERTEX_CONSOLE = re.compile(r"/(?:vertex-ai|agent-platform|ai/platform)/locations/([^/]+)/training/(?:customJobs/)?"
                            r"([0-9]{1,20})(?:/.*)?")
BUILD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
BUILD_RESOURCE = re.compile(r"projects/([^/]+)/locations/([^/]+)/builds/(" + BUILD_ID.pattern + ")")
BUILD_CONSOLE = re.compile(r"/cloud-build/builds(?:;region=([^/]+))?/(" + BUILD_ID.pattern + r")(?:/.*)?")
WANDB_ID = re.compile(r"[a-z0-9]{1,63}")
WANDB_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
WANDB_PATH = re.compile(rf"({WANDB_PART})/({WANDB_PART})/(?:runs/)?({WANDB_PART})")
WANDB_URL_PATH = re.compile(rf"/({WANDB_PART})/({WANDB_PART})/runs/({WANDB_PART})(?:/.*)?")
USAGE = ("expected a Cloud Run execution name (vertex-ai-launcher-x7k2p), a Vertex AI job id or console URL, "
         "a build id (UUID) or console URL, a W&B run id, ENTITY/PROJECT/ID or run URL")


def parse_target(text: str) -> Target:
    """What ID|URL names (pure); NotAnId with the one-line reason when it names nothing."""
    value = text.strip()
    if value.startswith(("https://", "http://")):
        return _from_url(text, value)
    if found := EXECUTION_RESOURCE.fullmatch(value):
        if EXECUTION_NAME.fullmatch(found.group(2)):
            return Target((Kind.EXECUTION,), found.group(2), region=found.group(1))
    elif found := VERTEX_RESOURCE.fullmatch(value):
        return Target((Kind.VERTEX_JOB,), found.group(3), region=found.group(2), project=found.group(1))
    elif found := BUILD_RESOURCE.fullmatch(value):
        return Target((Kind.BUILD,), found.group(3), region=found.group(2), project=found.group(1))
    elif VERTEX_ID.fullmatch(value):
        return Target((Kind.VERTEX_JOB,), value)
    elif BUILD_ID.fullmatch(value):
        return Target((Kind.BUILD,), value)
    elif found := WANDB_PATH.fullmatch(value):
        return Target((Kind.WANDB_RUN,), found.group(3), entity=found.group(1), wandb_project=found.group(2))
    else:
        kinds = tuple(k for k, pattern in ((Kind.EXECUTION, EXECUTION_NAME), (Kind.WANDB_RUN, WANDB_ID))
                      if pattern.fullmatch(value))
        if kinds:
            return Target(kinds, value)
    raise NotAnId(f"ID {text!r} names nothing arrctl can explain: {USAGE}")


def _from_url(text: str, value: str) -> Target:
    parts = urlsplit(value)
    path = unquote(parts.path)
    project = next(iter(parse_qs(parts.query).get("project") or []), None)
    if parts.hostname == "console.cloud.google.com":
        if (found := EXECUTION_CONSOLE.fullmatch(path)) and EXECUTION_NAME.fullmatch(found.group(2)):
            return Target((Kind.EXECUTION,), found.group(2), region=found.group(1), project=project)
        if found := VERTEX_CONSOLE.fullmatch(path):
            return Target((Kind.VERTEX_JOB,), found.group(2), region=found.group(1), project=project)
        if found := BUILD_CONSOLE.fullmatch(path):
            return Target((Kind.BUILD,), found.group(2), region=found.group(1), project=project)
    elif found := WANDB_URL_PATH.fullmatch(path):
        return Target((Kind.WANDB_RUN,), found.group(3), entity=found.group(1), wandb_project=found.group(2))
    raise NotAnId(f"URL {text!r} is not one arrctl can explain: expected an execution's, a Vertex AI job's or a "
                  "build's Google Cloud console URL, or a W&B run URL (https://wandb.ai/ENTITY/PROJECT/runs/ID)")
