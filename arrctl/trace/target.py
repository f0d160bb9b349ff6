"""What the user gave `arrctl trace`: an ID or URL of any hop, and the kinds of hop it may be (pure)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_DIGITS = re.compile(r"\d{6,25}")
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_JOB_RESOURCE = re.compile(r"projects/[^/]+/locations/[^/]+/customJobs/(\d+)")
_EXECUTION_RESOURCE = re.compile(r"projects/[^/]+/locations/[^/]+/jobs/[^/]+/executions/([a-z][-a-z0-9]*)")
_EXECUTION_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")


class BadTarget(ValueError):
    """ID|URL names nothing trace can follow; the message says what was expected."""


@dataclass(frozen=True)
class Target:
    """What the user gave: the kinds it may be (tried in order) and the id in each system."""

    kinds: tuple[str, ...]
    id: str


def parse_target(text: str, runner_job: str) -> Target:
    """The hop an ID|URL names: a queue item, an execution, a Vertex job id/URL, a W&B run id/path/URL."""
    value = text.strip()
    if not value:
        raise BadTarget("ID|URL: expected an id or a console URL, got an empty string")
    if "://" in value:
        return _from_url(value)
    for pattern, kind in ((_JOB_RESOURCE, "vertex_job"), (_EXECUTION_RESOURCE, "execution")):
        found = pattern.fullmatch(value)
        if found:
            return Target((kind,), found.group(1))
    if _DIGITS.fullmatch(value):
        return Target(("vertex_job",), value)
    if _is_queue_item(value):
        return Target(("queue_item",), value)
    if value.count("/") == 2:  # entity/project/run_id
        run = value.rsplit("/", 1)[1]
        if _RUN_ID.fullmatch(run):
            return Target(("wandb_run",), run)
    if value.startswith(f"{runner_job}-") and _EXECUTION_NAME.fullmatch(value):
        return Target(("execution",), value)
    if _RUN_ID.fullmatch(value):  # a W&B run id (any name the user chose), else an execution's name
        kinds = ("wandb_run", "execution") if _EXECUTION_NAME.fullmatch(value) else ("wandb_run",)
        return Target(kinds, value)
    raise BadTarget(f"ID|URL {value!r}: expected a queue item id, an execution name, a Vertex AI job id or "
                    "console URL, or a W&B run id, entity/project/id path or URL")


def _is_queue_item(value: str) -> bool:
    """W&B ids are base64 of `Type:number` (e.g. `RunQueueItem:478509036`, seen in agent logs)."""
    if len(value) < 8 or len(value) % 4:
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return decoded.startswith("RunQueueItem:")


def _from_url(value: str) -> Target:
    parts = urlsplit(value)
    path = [unquote(p) for p in parts.path.split("/") if p]
    if "customJobs" in path or "training" in path:  # Vertex console: .../locations/R/training/ID
        key = "customJobs" if "customJobs" in path else "training"
        at = path.index(key)
        if at + 1 < len(path) and _DIGITS.fullmatch(path[at + 1]):
            return Target(("vertex_job",), path[at + 1])
    if "executions" in path:  # Cloud Run console: .../executions/details/R/NAME/...
        rest = path[path.index("executions") + 1:]
        if rest[:1] == ["details"] and len(rest) >= 3:
            return Target(("execution",), rest[2])
        if rest:
            return Target(("execution",), rest[0])
    if "runs" in path:  # W&B: /ENTITY/PROJECT/runs/ID
        at = path.index("runs")
        if at + 1 < len(path) and _RUN_ID.fullmatch(path[at + 1]):
            return Target(("wandb_run",), path[at + 1])
    raise BadTarget(f"URL {value!r}: expected a Vertex AI job, Cloud Run execution or W&B run URL")
