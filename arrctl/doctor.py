"""`arrctl doctor`: one line per check of what arrctl needs, for the configured project and W&B entity.

Each check that calls a service runs in its own worker under a deadline (sources/probes.py, all at
once through `Refresher.run_many`), so a hung API is one failed line, never a hang. The rest is
pure: a worker's answer becomes a `Check`, a missing permission (a 403) names the predefined role
from README's permissions table that grants it, and the exit status is 0 only when every check
passed.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arrctl.kinds import ExitStatus
from arrctl.model import SOURCES


class Verdict(enum.Enum):
    """How one check came out; INFO lines never change the exit status."""

    OK = "ok"
    FAIL = "FAIL"
    INFO = "info"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    verdict: Verdict
    text: str


LABELS = {
    "config": "config", "credentials": "Google credentials", "project": "project", "runner": "runner",
    "builds": "builds", "vertex": "vertex", "logging": "Cloud Logging", "runner_job": "runner job",
    "wandb_host": "W&B host", "wandb_key": "W&B key", "wandb_project": "W&B project",
    "state": "state directory", "answers": "last answers",
}
# README's permissions table: the permission each check's call needs, and the predefined role granting it
NEEDS = {
    "runner": ("run.executions.list", "roles/run.viewer"),
    "runner_job": ("run.jobs.get", "roles/run.viewer"),
    "builds": ("cloudbuild.builds.list", "roles/cloudbuild.builds.viewer"),
    "vertex": ("aiplatform.customJobs.list", "roles/aiplatform.viewer"),
    "logging": ("logging.logEntries.list", "roles/logging.viewer"),
}
GOOGLE_CHECKS = ("runner", "builds", "vertex", "logging", "runner_job")
WANDB_CHECKS = ("wandb_host", "wandb_key", "wandb_project")
PROBE_CHECKS = {"credentials": ("credentials",), "runner": ("runner",), "builds": ("builds",),
                "vertex": ("vertex",), "logging": ("logging",), "runner_job": ("runner_job",),
                "wandb": WANDB_CHECKS}
DEFAULT_DEADLINE_S = 15.0


def line(check: Check, color: bool = False) -> str:
    """`ok    runner: run.executions.list allowed (...)`."""
    word = f"{check.verdict.value:<5}"
    if color:
        import click

        word = click.style(word, fg={Verdict.OK: "green", Verdict.FAIL: "red", Verdict.INFO: None}[check.verdict],
                           bold=check.verdict is Verdict.FAIL or None)
    return f"{word} {LABELS.get(check.name, check.name)}: {check.text}"


def exit_code(checks: list[Check]) -> int:
    """0 when no check failed, else 1."""
    return ExitStatus.ERROR if any(c.verdict is Verdict.FAIL for c in checks) else ExitStatus.OK


def from_fact(fact: dict[str, Any]) -> Check:
    """A probe's fact as a check; a refused call (403) names the permission and the role that grants it."""
    name = fact["check"]
    if fact["ok"]:
        return Check(name, Verdict.OK, fact["detail"])
    text = fact["detail"]
    if fact.get("status") == 403 and name in NEEDS:
        permission, role = NEEDS[name]
        # the API named the permission in its ErrorInfo: the role is what is left to say
        text += f" — grant {role}" if fact.get("permission") else f" — needs {permission}: grant {role}"
    return Check(name, Verdict.FAIL, text)


def from_results(results: dict[str, Any]) -> dict[str, Check]:
    """Every probe's checks; a probe that failed or timed out fails each check it was to answer."""
    checks: dict[str, Check] = {}
    for probe, result in results.items():
        for fact in result.results:
            checks[fact["check"]] = from_fact(fact)
        for name in PROBE_CHECKS[probe]:
            if name not in checks:
                checks[name] = Check(name, Verdict.FAIL, result.error or f"{result.state}: no answer")
    return checks


def config_check(config: Any, demo: bool) -> Check:
    """Where the configuration came from and what it says (it loaded: it is valid)."""
    if demo:
        where = "built in for --demo"
    elif config.path and Path(config.path).is_file():
        where = f"{config.path} is valid"
    elif config.project:
        where = f"no file at {config.path}; the environment sets the project"
    else:
        return Check("config", Verdict.FAIL, f"no file at {config.path} and no project: create it with "
                                             'project = "..." (or set GOOGLE_CLOUD_PROJECT)')
    wandb = f"{config.wandb_entity}/{config.wandb_project}" if config.wandb_entity and config.wandb_project \
        else "not set"
    return Check("config", Verdict.OK, f"{where}: project {config.project or 'not set'}, "
                                       f"{len(config.regions)} regions, runner job {config.runner_job} in "
                                       f"{config.job_region()}, W&B {wandb}")


def project_check(project: str | None, checks: dict[str, Check], facts: dict[str, dict[str, Any]]) -> Check:
    """The project is reachable when any Google API answered about it (a refusal is an answer too)."""
    if not project:
        return Check("project", Verdict.FAIL, "no project configured")
    answered = [n for n in GOOGLE_CHECKS if checks.get(n) and (checks[n].verdict is Verdict.OK
                                                                or (facts.get(n) or {}).get("status") is not None)]
    if answered:
        return Check("project", Verdict.OK, f"{project} reachable ({len(answered)} of {len(GOOGLE_CHECKS)} "
                                            "Google calls answered)")
    first = next((checks[n].text for n in GOOGLE_CHECKS if n in checks), "no answer")
    return Check("project", Verdict.FAIL, f"{project}: no Google API answered ({first})")


def state_check(store: Any) -> Check:
    """The state directory holds the store (else arrctl runs without memory, and check says UNKNOWN)."""
    if store.persistent:
        return Check("state", Verdict.OK, f"{store.directory} usable")
    return Check("state", Verdict.FAIL, f"{store.directory} unusable: running without persistence "
                                        "(re-reads logs; check says UNKNOWN)")


def answers_check(last: dict[str, float | None], now: float) -> Check:
    """How long ago each source last answered (from the store's last good rows)."""
    from arrctl.render import human_duration

    parts = [f"{s} {human_duration(now - at) + ' ago' if at is not None else 'never'}" for s, at in last.items()]
    return Check("answers", Verdict.INFO, ", ".join(parts))


def report(config: Any, demo: bool, results: dict[str, Any], store: Any, last: dict[str, float | None],
           now: float) -> list[Check]:
    """Every check in the order a person reads them (pure over what the workers and the store said)."""
    facts = {f["check"]: f for r in results.values() for f in r.results}
    checks = from_results(results)
    checks["config"] = config_check(config, demo)
    checks["project"] = project_check(config.project, checks, facts)
    checks["state"] = state_check(store)
    checks["answers"] = answers_check(last, now)
    return [checks[name] for name in LABELS if name in checks]


def last_answers(store: Any) -> dict[str, float | None]:
    """When each source last answered, from the store (None: never, or unreadable)."""
    import sqlite3

    out: dict[str, float | None] = {}
    for source in SOURCES:
        try:
            found = store.last_good(source)
        except sqlite3.Error:
            found = None
        out[source] = found[1] if found else None
    return out


def run_doctor(app: Any, deadline: float | None) -> int:
    """The whole command: every probe at once, then the report; the exit status."""
    from arrctl.output import Output, signals_handled
    from arrctl.config import ConfigError
    from arrctl.sources.probes import PROBES

    out = Output()
    with signals_handled() as receiver:
        try:
            with app.session(deadline_s=deadline, receiver=receiver) as refresher:
                config = refresher.config
                probes = PROBES if config.project else {n: PROBES[n] for n in ("credentials", "wandb")}
                results = refresher.run_many({name: (probe, {}) for name, probe in probes.items()},
                                             deadline or DEFAULT_DEADLINE_S)
                checks = report(config, app.demo, results, refresher.store, last_answers(refresher.store), time.time())
        except ConfigError as exc:
            checks = [Check("config", Verdict.FAIL, str(exc))]
    for check in checks:
        out.line(line(check, app.color))
    return exit_code(checks)
