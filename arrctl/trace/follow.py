"""The look-ups of `arrctl trace` (the I/O edge): rounds of killable workers through the refresher."""

from __future__ import annotations

from typing import Any

from arrctl.kinds import SourceState
from arrctl.model import TERMINAL_STATUSES
from arrctl.trace.chain import Found, Trace, build_chain
from arrctl.trace.target import Target

MAX_ROUNDS = 4  # each round asks about what the previous one learned (a W&B run's job, a job's run)
MEMORY_OF = {"runner": "runner", "vertex": "vertex", "wandb": "completed"}  # the source whose facts a probe's rows get


def first_asks(target: Target) -> dict[str, dict[str, list[str]]]:
    """Round one: the runner's recent executions always (their logs hold the links), and the hop itself."""
    asks: dict[str, dict[str, list[str]]] = {
        "runner": {"executions": [target.id] if "execution" in target.kinds else []}}
    if "vertex_job" in target.kinds:
        asks["vertex"] = {"jobs": [target.id], "runs": []}
    if "wandb_run" in target.kinds:
        asks["vertex"] = {"jobs": [], "runs": [target.id]}  # the job labelled with it, at once
        asks["wandb"] = {"runs": [target.id]}
    return asks


def next_asks(wanted: dict[str, set[str]], asked: dict[str, set[str]], failed: dict[str, str]
              ) -> dict[str, dict[str, list[str]]]:
    """What the chain still wants and was not asked yet, of systems that answered (pure)."""
    asks: dict[str, dict[str, list[str]]] = {}
    jobs = sorted(wanted.get("vertex", set()) - asked["vertex"])
    runs = sorted(wanted.get("vertex-label", set()) - asked["vertex-label"])
    if (jobs or runs) and "vertex" not in failed:
        asks["vertex"] = {"jobs": jobs, "runs": runs}
    wandb_runs = sorted(wanted.get("wandb", set()) - asked["wandb"])
    if wandb_runs and "wandb" not in failed:
        asks["wandb"] = {"runs": wandb_runs}
    return asks


def follow(refresher: Any, target: Target) -> tuple[Trace, Found]:
    """Look the chain up, round after round, each system in its own worker under its deadline."""
    import sqlite3

    from arrctl.sources import tracing

    fetchers = {"runner": tracing.probe_runner, "vertex": tracing.probe_vertex, "wandb": tracing.probe_wandb}
    from arrctl.refresh import LOG_SOURCES, fill_from_memory

    try:
        known = refresher.store.links("runner")
        # what each system's own logs said, as `get` remembered it (a W&B run's console log: `completed`)
        facts = {probe: refresher.store.facts(source) for probe, source in MEMORY_OF.items()}
    except sqlite3.Error:
        known, facts = {}, {}
    found = Found()
    asked: dict[str, set[str]] = {"vertex": set(), "vertex-label": set(), "wandb": set()}
    asks = first_asks(target)
    trace = build_chain(found, target)
    deadline = max(refresher.deadline(s) for s in ("runner", "vertex", "active"))
    for _ in range(MAX_ROUNDS):
        if not asks:
            break
        fetches = {}
        for probe, extra in asks.items():
            if probe == "runner":
                extra = {**extra, "known_links": known}
            fetches[probe] = (fetchers[probe], extra)
        results = refresher.run_many(fetches, deadline)
        asked["vertex"] |= set(asks.get("vertex", {}).get("jobs", []))
        asked["vertex-label"] |= set(asks.get("vertex", {}).get("runs", []))
        asked["wandb"] |= set(asks.get("wandb", {}).get("runs", []))
        for probe, result in results.items():
            found.add(probe, fill_from_memory(result.rows, facts.get(probe, {}),
                                              from_logs=MEMORY_OF[probe] in LOG_SOURCES))
            _save_facts(refresher, result.facts)
            if result.state != SourceState.OK:
                found.failed[probe] = f"{probe} {result.state}: {result.error}"
        trace = build_chain(found, target)
        asks = next_asks(trace.wanted, asked, found.failed)
    _remember(refresher, found, known)
    return trace, found


def _save_facts(refresher: Any, facts: list[dict[str, Any]]) -> None:
    """What the logs of ended executions said, read for their links: kept as a refresh keeps it."""
    import sqlite3

    if not facts:
        return
    try:
        refresher.store.save_refresh(facts, {})
    except sqlite3.Error as exc:
        refresher.warn(f"could not save state ({exc}); continuing without it")


def _remember(refresher: Any, found: Found, known: dict[str, Any]) -> None:
    """Links read from the logs of executions that ended long ago are kept: those logs are not read again."""
    import datetime as _dt
    import sqlite3

    from arrctl.sources.logread import settled

    now = _dt.datetime.now(_dt.timezone.utc)
    new = {id_: row["links"] for id_, row in found.executions.items()
           if row["links"] and id_ not in known and row["status"] in TERMINAL_STATUSES and settled(row, now)}
    try:
        refresher.store.save_links("runner", new)
    except sqlite3.Error as exc:
        refresher.warn(f"could not save links ({exc}); continuing without them")
