"""What an ID or URL given on the command line names: a runner execution, a Vertex AI job, a build, a W&B run.

Pure. The shapes accepted are the ones arrctl itself prints (row `url`s) and the ones the
consoles and APIs use:
- runner execution: its name (`vertex-ai-launcher-x7k2p`), its resource name
  `projects/P/locations/R/jobs/J/executions/NAME`, or the Cloud Run console URL
  `https://console.cloud.google.com/run/jobs/executions/details/R/NAME/tasks?project=P`;
- Vertex AI custom job: its numeric id, `projects/P/locations/R/customJobs/ID`, or the console URL
  `https://console.cloud.google.com/vertex-ai/locations/R/training/ID/cpu?project=P`;
- Cloud Build build: its UUID, `projects/P/locations/R/builds/ID`, or the console URL
  `https://console.cloud.google.com/cloud-build/builds[;region=R]/ID?project=P` (the build's `logUrl`);
- W&B run: `https://HOST/ENTITY/PROJECT/runs/ID`, `ENTITY/PROJECT/ID`, or a bare run id.
A bare name with a hyphen is an execution (Cloud Run names it `JOB-xxxxx`); a bare word of
letters and digits without one is a W&B run id (give `ENTITY/PROJECT/ID` for one with hyphens).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit


class Kind(enum.Enum):
    """The kinds of item `arrctl logs` (and `explain`, `trace`) can be pointed at."""

    EXECUTION = "execution"
    VERTEX_JOB = "vertex_job"
    BUILD = "build"
    WANDB_RUN = "wandb_run"


@dataclass(frozen=True)
class Ref:
    """One item, as far as its ID or URL tells: kind, id, and where it lives when that was given."""

    kind: Kind
    id: str
    region: str | None = None
    project: str | None = None  # the Google project in a URL or resource name
    entity: str | None = None  # W&B
    wandb_project: str | None = None  # W&B


class RefError(ValueError):
    """The text names nothing arrctl knows; the message says what is accepted."""


# Cloud Run names: an RFC 1035 label (lowercase letters, digits, hyphens; a letter first).
_LABEL = r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?"
_EXECUTION_NAME = re.compile(_LABEL)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_VERTEX_ID = re.compile(r"[0-9]{1,30}")
_WANDB_ID = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_RESOURCES = (
    (Kind.EXECUTION, re.compile(r"projects/([^/]+)/locations/([^/]+)/jobs/[^/]+/executions/(" + _LABEL + ")")),
    (Kind.VERTEX_JOB, re.compile(r"projects/([^/]+)/locations/([^/]+)/customJobs/([0-9]+)")),
    (Kind.BUILD, re.compile(r"projects/([^/]+)/locations/([^/]+)/builds/([0-9a-f-]{36})")),
)
_CONSOLE = (
    (Kind.EXECUTION, re.compile(r"/run/jobs/executions/details/([^/]+)/(" + _LABEL + r")(?:/.*)?")),
    (Kind.VERTEX_JOB, re.compile(r"/vertex-ai/(?:locations/([^/]+)/)?training/([0-9]+)(?:/.*)?")),
    (Kind.BUILD, re.compile(r"/cloud-build/builds(?:;region=([^/]+))?/([0-9a-f-]{36})(?:/.*)?")),
)
_WANDB_URL = re.compile(r"/([^/]+)/([^/]+)/runs/([^/?#]+)(?:/.*)?")
_WANDB_PATH = re.compile(r"([^/\s]+)/([^/\s]+)/(?:runs/)?([^/\s]+)")

ACCEPTED = ("a runner execution name, a Vertex AI job id, a build id, a W&B run id or ENTITY/PROJECT/ID, "
            "their resource names, or a console / W&B URL")


def parse_ref(text: str) -> Ref:
    """The item `text` names; RefError when it names none."""
    value = text.strip()
    if not value:
        raise RefError(f"an empty ID: expected {ACCEPTED}")
    if "://" in value:
        return _from_url(value)
    for kind, pattern in _RESOURCES:
        found = pattern.fullmatch(value)
        if found:
            return Ref(kind, found.group(3), region=found.group(2), project=found.group(1))
    if _UUID.fullmatch(value):
        return Ref(Kind.BUILD, value)
    if _VERTEX_ID.fullmatch(value):
        return Ref(Kind.VERTEX_JOB, value)
    if "-" in value and _EXECUTION_NAME.fullmatch(value):
        return Ref(Kind.EXECUTION, value)
    path = _WANDB_PATH.fullmatch(value)
    if path:
        return Ref(Kind.WANDB_RUN, path.group(3), entity=path.group(1), wandb_project=path.group(2))
    if _WANDB_ID.fullmatch(value) and "-" not in value:
        return Ref(Kind.WANDB_RUN, value)
    raise RefError(f"{text!r} is not an ID arrctl knows: expected {ACCEPTED}")


def _from_url(url: str) -> Ref:
    parts = urlsplit(url)
    path = unquote(parts.path)
    project = (parse_qs(parts.query).get("project") or [None])[0]
    if parts.hostname == "console.cloud.google.com":
        for kind, pattern in _CONSOLE:
            found = pattern.fullmatch(path)
            if found:
                return Ref(kind, found.group(2), region=found.group(1), project=project)
        raise RefError(f"{url!r}: a Google Cloud console URL arrctl cannot read (expected a Cloud Run execution, "
                       "a Vertex AI training job or a Cloud Build build)")
    found = _WANDB_URL.fullmatch(path)
    if found:
        return Ref(Kind.WANDB_RUN, found.group(3), entity=found.group(1), wandb_project=found.group(2))
    raise RefError(f"{url!r}: not a URL arrctl knows (expected a console URL or https://wandb.ai/ENTITY/PROJECT/runs/ID)")
