"""`arrctl explain ID|URL`: the item found where it is, and the root cause from its own logs.

What the text names is read by arrctl/ids.py (pure). The look-ups run in the supervisor's workers
(sources/finders.py, sources/launcher.py), every kind and region concurrently, under the deadline.
"""

from __future__ import annotations

from typing import Any

from arrctl.ids import Kind, Target
from arrctl.kinds import SourceState


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
        if result.state != SourceState.OK or not result.results:
            problems.append(f"{kind.value} {target.id}: {result.error or 'no answer'}")
            continue
        fact = result.results[0]
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


def run_explain(app: Any, item: str | None, from_file: Any, json_out: bool, deadline: float | None) -> int:
    """The explain command: analyse the text of `from_file`, else look `item` up; print the analysis."""
    from arrctl.ids import NotAnId, parse_target
    from arrctl.kinds import ExitStatus
    from arrctl.output import Output, config_errors, fail, signals_handled
    from arrctl.render import ndjson

    found = source_note = None
    if from_file is not None:
        from arrctl.extract import analyze
        from arrctl.extract.ingest import lines_of_input

        raw = from_file.read()
        analysis = analyze(lines_of_input(raw.decode("utf-8", "replace"))).to_dict()
    else:
        try:
            target = parse_target(item or "")
        except NotAnId as exc:
            fail(str(exc), ExitStatus.USAGE)
        with signals_handled() as receiver, config_errors(ExitStatus.USAGE):
            with app.session(deadline_s=deadline, receiver=receiver) as refresher:
                try:
                    analysis, source_note, found = explain(refresher, target)
                except NotExplained as exc:
                    fail(str(exc), ExitStatus.ERROR)
    if json_out:
        Output().bytes(ndjson(as_json(analysis)))
    else:
        for line in explain_lines(analysis, source_note, found):
            Output().line(line)
    return ExitStatus.OK
