"""One refresh end to end: memory in, workers out, results merged with memory, memory saved."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from arrctl.kinds import SourceState
from arrctl.config import Config, require_project
from arrctl.links import join_links, with_remembered
from arrctl.model import TERMINAL_STATUSES, Row, SourceResult, apply_facts, newest_first
from arrctl.signals import SignalReceiver
from arrctl.sources import FetchContext, logs
from arrctl.store import Fact, Store
from arrctl.supervisor import Supervisor, WorkerSpec


GOOGLE_SOURCES = frozenset({"runner", "builds", "vertex"})
# The sources whose terminal items are explained from their own logs (sources/logread.py): what
# memory says of them is what their logs said, and beats the API's generic words.
LOG_SOURCES = frozenset({"runner", "builds", "vertex", "completed"})  # completed: sources/wandb_logs.py


@dataclass(frozen=True)
class Endpoints:
    """Where the clients go: the real services (None) or a local endpoint (sandbox, emulator)."""

    gcp: str | None = None
    wandb: str | None = None
    memory: str | None = None
    """What memory is keyed by instead of the two addresses (the demo's sandbox takes a new port each run)."""


def _address(url: str | None) -> str:
    """An endpoint as memory knows it: the real service, or the URL without case or trailing slash."""
    if not url or not url.strip():
        return "default"
    return url.strip().rstrip("/").lower()


def memory_scope(config: Config, endpoints: Endpoints) -> str:
    """What the memory of a refresh belongs to: project, runner job, W&B entity/project, endpoints.

    Rows, facts and reports remembered under another scope are never shown (another project, another
    job, the sandbox behind ARRCTL_GCP_ENDPOINT...). Readable on purpose: it is a key in the store.
    """
    parts = {
        "project": config.project, "job": config.runner_job,
        "wandb": f"{config.wandb_entity or ''}/{config.wandb_project or ''}",
        "gcp_endpoint": endpoints.memory or _address(endpoints.gcp),
        "wandb_endpoint": endpoints.memory or _address(endpoints.wandb),
    }
    return orjson.dumps(parts, option=orjson.OPT_SORT_KEYS).decode()


def facts_from_rows(results: dict[str, SourceResult], known: dict[str, dict[str, Fact]]) -> list[Fact]:
    """Terminal rows not yet remembered become facts (their message is what the API said)."""
    facts: list[Fact] = []
    for source, result in results.items():
        worker_facts = {f["id"] for f in result.facts}
        for row in result.rows:
            if row["status"] in TERMINAL_STATUSES and row["id"] not in known.get(source, {}) \
                    and row["id"] not in worker_facts:
                if row["extra"].get("logs_unread"):
                    continue  # its logs were not read yet (e.g. the log read timed out): try again next time
                facts.append({"source": source, "id": row["id"], "status": row["status"],
                              "verdict": "failed" if row["status"] in ("FAILED", "TIMEOUT") else "succeeded",
                              "message": row["message"], "rule": None, "jobs": None, "line": None,
                              "finished": row["finished"]})
    return facts


def fill_from_memory(rows: list[Row], facts: dict[str, Fact], from_logs: bool = True) -> list[Row]:
    """Rows of terminal items with what memory keeps for them (model.apply_facts: for the sources
    that read logs, `from_logs`, memory is what the logs said and beats the platform's generic
    text; for the others the API's own message is the truth and memory only fills a gap), each
    failed one with its category."""
    return [with_category(row) for row in apply_facts(rows, facts, from_logs)]


def with_category(row: Row) -> Row:
    """A FAILED or TIMEOUT row with the category of its root error (SPEC), else as it is."""
    if row["status"] not in ("FAILED", "TIMEOUT") or row.get("category"):
        return row
    from arrctl.extract import categorize

    message = row["message"]
    category = categorize(message) if message else None
    if category in (None, "unknown") and row["status"] == "TIMEOUT":
        category = "timeout"  # the platform says so, whatever its words
    return {**row, "category": category or "unknown"}  # type: ignore[typeddict-item]


def call_timeout(deadline: float) -> float:
    """Each socket read may take most of the deadline; the kill at the deadline is the backstop."""
    return max(0.5, deadline * 0.8)


def row_limit(config: Config, source: str) -> int | None:
    """How many rows a source shows (None: no limit, e.g. builds keep their two tables)."""
    return {"runner": config.runner_limit, "vertex": config.vertex_limit,
            "completed": config.wandb_completed_limit}.get(source)


def merge_parts(config: Config, source: str, rows: list[Row]) -> list[Row]:
    """The rows of several parts (regions, build locations) as one set, as the worker would send it."""
    if source == "builds":  # two tables: every active build, the newest finished ones
        from arrctl.sources.builds import merge_locations

        return merge_locations([rows], config.builds_recent)
    return newest_first(rows, row_limit(config, source))


def with_stale(result: SourceResult, last: tuple[list[Row], float] | None, now: float) -> SourceResult:
    """A failed or timed-out source keeps what arrived and shows its last good rows for the rest."""
    if result.state == SourceState.OK or last is None:
        return result
    rows, saved_at = last
    if result.rows:
        missing = set(result.missing)
        if not missing:
            return result
        # a part is a region (runner, vertex) or a table (builds: active, recent)
        fresh = {r["id"] for r in result.rows}
        rows = [r for r in rows if (r.get("region") in missing or r["extra"].get("table") in missing)
                and r["id"] not in fresh]
        if not rows:
            return result
    result.stale_s = max(0.0, now - saved_at)
    # each remembered row says how old it is, so a script can tell them from the fresh ones
    rows = [{**r, "extra": {**r["extra"], "stale_s": round(result.stale_s, 1)}} for r in rows]  # type: ignore[misc]
    result.rows = result.rows + rows if result.rows else rows
    result.from_memory = {r["id"] for r in rows}
    return result


class Refresher:
    """Runs refreshes for one configuration against one store."""

    def __init__(self, config: Config, store: Store, endpoints: Endpoints, *, grace_s: float = 0.5,
                 receiver: SignalReceiver | None = None, deadline_s: float | None = None,
                 warn: Callable[[str], None] = lambda m: None, clock: Callable[[], float] = time.time,
                 supervisor: Supervisor | None = None) -> None:
        """`supervisor` runs the workers (by default one with `grace_s` and `receiver`; tests give
        one over a fake system)."""
        self.config = config
        self.store = store
        self.endpoints = endpoints
        self.supervisor = supervisor if supervisor is not None else Supervisor(grace_s=grace_s, receiver=receiver)
        self.deadline_s = deadline_s
        self.warn = warn
        self.clock = clock

    def deadline(self, source: str) -> float:
        """Seconds the source's worker may take."""
        return self.deadline_s if self.deadline_s is not None else self.config.deadlines.get(source, 30.0)

    def refresh(self, sources: list[str], tick: Callable[[], None] | None = None) -> dict[str, SourceResult]:
        """Fetch the sources once; return their results merged with memory, in source order."""
        if set(sources) & GOOGLE_SOURCES:
            require_project(self.config)
        known = {source: self._facts(source) for source in sources}
        retries = {source: self._log_retries(source) for source in sources if source in LOG_SOURCES}
        hold_s = self.logging_hold_s()
        started = self.clock()
        specs = []
        for source in sources:
            deadline = self.deadline(source)
            ctx = FetchContext(
                config=self.config, known_terminal=frozenset(known[source]), deadline_s=deadline,
                call_timeout_s=call_timeout(deadline),
                gcp_endpoint=self.endpoints.gcp, wandb_base_url=self.endpoints.wandb,
                log_retry={id_: (times, max(0.0, next_at - started), reason)
                           for id_, (times, next_at, reason) in retries.get(source, {}).items()
                           if id_ not in known[source]},
                logging_hold_s=hold_s,
            )
            specs.append(WorkerSpec(source, ctx, deadline))
        results = self.supervisor.run(specs, tick)
        self.note_log_reads(results.values(), per_id=True)
        now = self.clock()
        new_facts = [f for r in results.values() for f in r.facts] + facts_from_rows(results, known)
        for fact in new_facts:
            known[fact["source"]][fact["id"]] = fact
        remembered = self._remember_links(new_facts)
        good: dict[str, list[Row]] = {}
        for source, result in results.items():
            result.rows = fill_from_memory(result.rows, known[source], from_logs=source in LOG_SOURCES)
            if source in remembered:
                result.rows = with_remembered(result.rows, remembered[source])
            if result.state == SourceState.OK:
                good[source] = result.rows
        try:
            self.store.save_refresh(new_facts, good)
        except sqlite3.Error as exc:
            self.warn(f"could not save state ({exc}); continuing without it")
        for source, result in results.items():
            if result.state != SourceState.OK:
                with_stale(result, self._last_good(source), now)
                if result.missing:  # parts of a cut-off worker: merge them here
                    result.rows = merge_parts(self.config, source, result.rows)
        join_links(results)
        return {source: results[source] for source in sources}

    def _remember_links(self, facts: list[Fact]) -> dict[str, dict[str, dict[str, Any]]]:
        """Store the links new facts carry (what logs read once named); every source's remembered links."""
        by_source: dict[str, dict[str, dict[str, Any]]] = {}
        for fact in facts:
            if fact.get("links"):
                by_source.setdefault(fact["source"], {})[fact["id"]] = fact["links"]
        out: dict[str, dict[str, dict[str, Any]]] = {}
        try:
            for source, links in by_source.items():
                self.store.save_links(source, links)
            out["runner"] = self.store.links("runner")
        except sqlite3.Error as exc:
            self.warn(f"could not save links ({exc}); continuing without them")
            for source, links in by_source.items():
                out.setdefault(source, {}).update(links)
        return out

    def run_many(self, fetches: dict[str, tuple[Any, dict[str, Any]]], deadline: float,
                 tick: Callable[[], None] | None = None) -> dict[str, SourceResult]:
        """Run ad-hoc fetch functions (launch, explain) in killable workers; no memory involved."""
        specs = []
        hold_s = self.logging_hold_s()
        for name, (fetch, extra) in fetches.items():
            ctx = FetchContext(config=self.config, deadline_s=deadline,
                               call_timeout_s=call_timeout(deadline),
                               gcp_endpoint=self.endpoints.gcp, wandb_base_url=self.endpoints.wandb, extra=extra,
                               logging_hold_s=hold_s)
            specs.append(WorkerSpec(name, ctx, deadline, fetch))
        results = self.supervisor.run(specs, tick)
        self.note_log_reads(results.values(), per_id=False)
        return results

    def poll(self, fetches: dict[str, tuple[Any, dict[str, Any]]], deadline: Callable[[], float], interval_s: float,
             until: float, on_result: Callable[[str, SourceResult], bool],
             tick: Callable[[], bool] | None = None) -> None:
        """Poll ad-hoc fetches (launch), each in its own rhythm (Supervisor.poll); `deadline()` per start."""
        def spec(name: str) -> WorkerSpec:
            fetch, extra = fetches[name]
            seconds = deadline()
            ctx = FetchContext(config=self.config, deadline_s=seconds, call_timeout_s=call_timeout(seconds),
                               gcp_endpoint=self.endpoints.gcp, wandb_base_url=self.endpoints.wandb, extra=extra,
                               logging_hold_s=self.logging_hold_s())
            return WorkerSpec(name, ctx, seconds, fetch)

        def noted(name: str, result: SourceResult) -> bool:
            self.note_log_reads([result], per_id=False)
            return on_result(name, result)

        self.supervisor.poll(spec, list(fetches), interval_s, until, noted, tick)

    def logging_hold_s(self) -> float:
        """Seconds the project's Cloud Logging reads must still wait after a 429 (any process's)."""
        if not self.config.project:
            return 0.0
        try:
            _times, until = self.store.logging_hold(self.config.project)
        except sqlite3.Error:
            return 0.0
        return max(0.0, until - self.clock())

    def note_log_reads(self, results: Any, per_id: bool) -> None:
        """Store how the workers' log reads went: backoff per execution, the project's 429 hold."""
        for result in results:
            for report in result.log_reads:
                try:
                    if per_id:
                        self.store.record_log_reads(result.source, report.get("read") or [],
                                                    report.get("cut") or {}, logs.retry_delay_s)
                    if report.get("called") and self.config.project:
                        self.store.record_logging_quota(self.config.project, bool(report.get("rate_limited")),
                                                        logs.hold_s)
                except sqlite3.Error as exc:
                    self.warn(f"could not save the state of log reads ({exc}); continuing without it")

    def run_one(self, name: str, fetch: Any, extra: dict[str, Any], deadline: float | None = None) -> SourceResult:
        """One ad-hoc fetch in a killable worker."""
        return self.run_many({name: (fetch, extra)}, deadline or self.deadline("runner"))[name]

    def _facts(self, source: str) -> dict[str, Fact]:
        try:
            return self.store.facts(source)
        except sqlite3.Error as exc:
            self.warn(f"could not read state ({exc}); continuing without it")
            return {}

    def _log_retries(self, source: str) -> dict[str, tuple[int, float, str | None]]:
        try:
            return self.store.log_retries(source)
        except sqlite3.Error:
            return {}

    def _last_good(self, source: str) -> tuple[list[Row], float] | None:
        try:
            return self.store.last_good(source)
        except sqlite3.Error:
            return None
