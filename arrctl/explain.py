"""`arrctl explain ID|URL`: what an id or URL names, found where it is, and the root cause from its own logs.

`parse_target` (pure) tells the kinds apart by their shapes:
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
The look-ups run in the supervisor's workers (sources/finders.py, sources/launcher.py), every
kind and region concurrently, under the deadline.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any
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


# --- rendering -------------------------------------------------------------------------------

JSON_KEYS = ("verdict", "message", "category", "rule", "line", "jobs", "context")  # SPEC


def as_json(analysis: dict[str, Any]) -> dict[str, Any]:
    """The one object of `--json`, exactly SPEC's keys."""
    return {key: analysis.get(key) if key != "context" else list(analysis.get("context") or []) for key in JSON_KEYS}


def explain_lines(analysis: dict[str, Any], note: str | None = None, found: str | None = None) -> list[str]:
    """Human-readable explanation: what and where, verdict and message, rule and line, the numbered context."""
    from arrctl.render import clean

    verdict = analysis["verdict"]
    head = {"failed": "FAILED", "succeeded": "SUCCEEDED"}.get(verdict, "UNKNOWN")
    message = analysis["message"] or (note or "no error and no success summary found in the logs")
    lines = [f"{head}: {clean(message)}"]
    if found:
        lines.append(f"item: {clean(found)}")
    if note and analysis["message"]:  # e.g. the logs could not be read in full: say so
        lines.append(f"note: {clean(note)}")
    if analysis.get("category"):
        lines.append(f"category: {analysis['category']}")
    if analysis["rule"]:
        where = f" (line {analysis['line']})" if analysis["line"] else ""
        lines.append(f"rule: {analysis['rule']}{where}")
    if analysis["jobs"] is not None:
        lines.append(f"jobs: {analysis['jobs']}")
    context = analysis.get("context") or []
    if context:
        before = 20 if verdict == "failed" else 5  # the windows extract cuts (SPEC: 20 and 80)
        first = max(1, analysis["line"] - before) if analysis["line"] else 1
        width = len(str(first + len(context)))
        lines.append("")
        for offset, text in enumerate(context):
            number = first + offset
            mark = ">" if number == analysis["line"] else "|"
            lines.append(f"{number:>{width}} {mark} {clean(text)}")
    return lines


# --- the driver (the CLI calls it inside a session) ------------------------------------------

class NotExplained(Exception):
    """The item could not be found or read; the message is the one-line error (exit 1)."""


def fetches(target: Target, config: Any, created: str | None) -> dict[str, tuple[Any, dict[str, Any]]]:
    """The worker fetches that look the target up, one per kind it may be."""
    from arrctl.sources import finders
    from arrctl.sources.launcher import explain_execution

    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    for kind in target.kinds:
        if kind is Kind.EXECUTION:
            out[kind.value] = (explain_execution, {"execution": target.id, "created": created})
        elif kind is Kind.VERTEX_JOB:
            out[kind.value] = (finders.explain_vertex_job, {"id": target.id, "region": target.region})
        elif kind is Kind.BUILD:
            out[kind.value] = (finders.explain_build, {"id": target.id, "region": target.region})
        elif config.wandb_entity or target.entity or len(target.kinds) == 1:  # an unconfigured W&B is no guess
            out[kind.value] = (finders.explain_wandb_run,
                               {"id": target.id, "entity": target.entity, "project": target.wandb_project})
    return out


def conclude(target: Target, results: dict[str, Any], config: Any) -> tuple[dict[str, Any], str | None, str]:
    """(analysis, note, what was found) from the workers' results, in the target's order of kinds."""
    problems: list[str] = []
    for kind in target.kinds:
        result = results.get(kind.value)
        if result is None:
            continue
        if result.state != "ok" or not result.facts:
            problems.append(f"{kind.value} {target.id}: {result.error or 'no answer'}")
            continue
        fact = result.facts[0]
        if fact.get("found") is False:
            continue
        note = fact.get("note")
        if kind is Kind.EXECUTION:
            note = note or (None if fact.get("entries") else
                            f"no log entries found for {target.id} (Cloud Logging may lag by minutes)")
            where = f"execution {target.id} of job {config.runner_job}"
        else:
            where = f"{kind.value} {target.id} in {fact.get('where')}"
        return fact, note, where
    if problems:
        raise NotExplained("could not look up " + "; ".join(problems))
    raise NotExplained(not_found(target, config))


def not_found(target: Target, config: Any) -> str:
    """The one line for an id found nowhere it was looked for."""
    where = ", ".join(config.regions) if len(config.regions) <= 3 else f"any of its {len(config.regions)} regions"
    names = {Kind.EXECUTION: f"execution {target.id} not found: job {config.runner_job} of project {config.project} "
                             f"has no such execution in {where}",
             Kind.VERTEX_JOB: f"Vertex AI job {target.id} not found in project {config.project}, "
                              f"{target.region or where}",
             Kind.BUILD: f"build {target.id} not found in project {config.project} (global and {where})"
             if not target.region else f"build {target.id} not found in project {config.project}, {target.region}",
             Kind.WANDB_RUN: f"W&B run {target.id} not found in "
                             f"{target.entity or config.wandb_entity}/{target.wandb_project or config.wandb_project}"}
    return "; ".join(names[k] for k in target.kinds)


def scoped(refresher: Any, target: Target) -> Target:
    """The target as this configuration can look it up (explain and logs alike): without a Google
    project only W&B can answer; a URL that names its project is looked up there (ConfigError when a
    Google kind has no project)."""
    import dataclasses

    from arrctl.config import require_project

    config = refresher.config
    if not config.project and Kind.WANDB_RUN in target.kinds:  # no Google project: only W&B can answer
        target = dataclasses.replace(target, kinds=(Kind.WANDB_RUN,))
    if set(target.kinds) - {Kind.WANDB_RUN}:
        require_project(config)
    if target.project and target.project != config.project and not target.project.isdigit():
        refresher.config = dataclasses.replace(config, project=target.project)  # the URL names its project
    return target


def explain(refresher: Any, target: Target) -> tuple[dict[str, Any], str | None, str]:
    """Look the target up (every kind at once, in the supervisor's workers) and analyse its own logs."""
    target = scoped(refresher, target)
    config = refresher.config
    created = remembered_created(refresher.store, target.id) if Kind.EXECUTION in target.kinds else None
    jobs = fetches(target, config, created)
    if not jobs:
        raise NotExplained(f"W&B run {target.id}: W&B entity/project not configured")
    results = refresher.run_many(jobs, refresher.deadline("runner"))
    return conclude(target, results, config)


def remembered_created(store: Any, execution: str) -> str | None:
    """When the runner rows in memory say the execution was created (the lower bound of its log read)."""
    import sqlite3

    try:
        last = store.last_good("runner")
    except sqlite3.Error:
        return None
    return next((row.get("created") for row in (last[0] if last else []) if row.get("id") == execution), None)
