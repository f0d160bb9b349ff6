"""The chain of one launch from what the look-ups found: hops, how each was tied in, what to ask next (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from arrctl.model import Row, epoch, newest_first
from arrctl.trace.target import Target

KINDS = ("queue_item", "execution", "vertex_job", "wandb_run")
PROBE_OF = {"execution": "runner", "vertex_job": "vertex", "wandb_run": "wandb"}
KIND_WORDS = {"queue_item": "queue item", "execution": "execution", "vertex_job": "Vertex job",
              "wandb_run": "W&B run"}
VIA_WORDS = {"log": "its logs name it", "label": "label wandb-run-id", "config": "config names the queue item",
             "time": "time window only"}


@dataclass
class Found:
    """What the look-ups found so far, by kind, and why a system could not be asked."""

    executions: dict[str, Row] = field(default_factory=dict)
    jobs: dict[str, Row] = field(default_factory=dict)
    runs: dict[str, Row] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # probe (runner|vertex|wandb) -> reason

    def add(self, probe: str, rows: Iterable[Row]) -> None:
        """Rows a probe sent (a failed probe's partial rows too)."""
        into = {"runner": self.executions, "vertex": self.jobs, "wandb": self.runs}[probe]
        for row in rows:
            into.setdefault(row["id"], row)


@dataclass
class Hop:
    """One hop of the chain, as the `hop` record of SPEC (plus its age, for the text)."""

    kind: str
    id: str | None
    status: str = "UNKNOWN"
    message: str | None = None
    category: str | None = None
    url: str | None = None
    via: str | None = None
    parent: str | None = None
    since: str | None = None  # RFC 3339: when it started (or was created)
    unknown: bool = False  # its system could not be asked
    found: bool = True  # False: not found (its system answered, or could not be asked)

    def record(self) -> dict[str, Any]:
        """`{"type":"hop","kind","id","status","message","category","url","via","from"}`."""
        return {"type": "hop", "kind": self.kind, "id": self.id, "status": self.status, "message": self.message,
                "category": self.category, "url": self.url, "via": self.via, "from": self.parent}


@dataclass
class Trace:
    """The chain, and what a further round of look-ups should ask (probe -> ids)."""

    hops: list[Hop]
    wanted: dict[str, set[str]] = field(default_factory=dict)

    @property
    def unknown(self) -> list[str]:
        """Kinds of the hops that could not be looked up (their source failed), in chain order."""
        return [kind for kind in KINDS if any(h.kind == kind and h.unknown for h in self.hops)]

    @property
    def complete(self) -> bool:
        """Every kind of hop found."""
        return not self.missing

    @property
    def missing(self) -> list[str]:
        """Kinds of which no hop was found, in chain order."""
        return [kind for kind in KINDS if not any(h.kind == kind and h.found for h in self.hops)]

    def record(self) -> dict[str, Any]:
        """The closing `trace` record of SPEC."""
        return {"type": "trace", "complete": self.complete, "unknown": self.unknown}


def _from_row(kind: str, row: Row, via: str | None, parent: str | None) -> Hop:
    return Hop(kind, row["id"], row["status"], row["message"], row["category"], row["url"], via, parent,
               row["started"] or row["created"])


def _ran_when(execution: Row, moment: float) -> bool:
    start = epoch(execution["started"]) or epoch(execution["created"])
    end = epoch(execution["finished"])
    return start is not None and start <= moment and (end is None or moment <= end)


@dataclass
class _Launch:
    item: str | None = None
    item_via: str | None = None
    execution: Row | None = None
    execution_via: str | None = None
    job: Row | None = None
    job_id: str | None = None
    job_via: str | None = None
    run: Row | None = None
    run_id: str | None = None
    run_via: str | None = None


def build_chain(found: Found, target: Target) -> Trace:
    """The chain through the hop `target` names, from what was found (pure)."""
    executions = newest_first(list(found.executions.values()))
    jobs = newest_first(list(found.jobs.values()))
    job_of_run: dict[str, Row] = {}
    for job in jobs:
        job_of_run.setdefault(job["links"].get("wandb_run") or "", job)
    wanted: dict[str, set[str]] = {}
    kind = next((k for k in target.kinds if _exists(found, k, target.id)), target.kinds[0])
    launches: list[_Launch] = []
    lone: Row | None = None  # an execution traced by itself (several launches, or none)
    if kind == "execution":
        execution = found.executions.get(target.id)
        if execution is None:
            return _missing_start(found, target, kind)
        job_ids = list(execution["links"].get("vertex_jobs") or [])
        items = list(execution["links"].get("queue_items") or [])
        if len(job_ids) == 1 or (not job_ids and len(items) == 1):
            launch = _Launch(execution=execution, execution_via="log")
            launch.job_id, launch.job_via = (job_ids[0], "log") if job_ids else (None, None)
            launch.item, launch.item_via = (items[0], "log") if len(items) == 1 else (None, None)
            launches = [launch]
        else:
            lone = execution
            launches = [_Launch(execution=execution, execution_via="log", job_id=j, job_via="log") for j in job_ids]
    elif kind == "vertex_job":
        launches = [_Launch(job_id=target.id)]
    elif kind == "wandb_run":
        launches = [_Launch(run_id=target.id)]
    else:
        launches = [_Launch(item=target.id)]
    for launch in launches:
        _complete(launch, found, executions, job_of_run, wanted, searching=lone is None)
    return Trace(_hops(launches, lone, found, items if lone is not None else []), wanted)


def _exists(found: Found, kind: str, id_: str) -> bool:
    return id_ in {"execution": found.executions, "vertex_job": found.jobs, "wandb_run": found.runs}.get(kind, {})


def _missing_start(found: Found, target: Target, kind: str) -> Trace:
    probe = PROBE_OF[kind]
    reason = found.failed.get(probe)
    hop = Hop(kind, target.id, message=reason or f"no {KIND_WORDS[kind]} {target.id} found", unknown=bool(reason),
              found=False)
    return Trace([hop])


def _complete(launch: _Launch, found: Found, executions: list[Row], job_of_run: dict[str, Row],
              wanted: dict[str, set[str]], searching: bool) -> None:
    """Fill one launch's hops from each other, in every direction, until nothing more is learned."""
    for _ in range(4):
        if launch.run is None and launch.run_id:
            launch.run = found.runs.get(launch.run_id)
        if launch.job is None and launch.job_id:
            launch.job = found.jobs.get(launch.job_id)
        if launch.job is None and launch.run_id and launch.run_id in job_of_run:
            launch.job, launch.job_id = job_of_run[launch.run_id], job_of_run[launch.run_id]["id"]
            launch.job_via = launch.job_via or "label"
        if launch.job is not None and not launch.run_id and launch.job["links"].get("wandb_run"):
            launch.run_id, launch.run_via = launch.job["links"]["wandb_run"], "label"
        if launch.run_id and launch.job is not None and launch.job["links"].get("wandb_run") == launch.run_id:
            launch.run_via = "label"  # the strongest proof of this link, however the run was found
        if launch.item is None:
            for row, via in ((launch.run, "config"), (launch.job, "config")):
                if row is not None and row["links"].get("queue_item"):
                    launch.item, launch.item_via = row["links"]["queue_item"], via
                    break
        if launch.job is None and launch.item:  # a job whose env names the queue item
            for job in found.jobs.values():
                if job["links"].get("queue_item") == launch.item:
                    launch.job, launch.job_id, launch.job_via = job, job["id"], launch.job_via or "config"
        if launch.run is None and launch.item:  # a run whose config names the queue item
            for run in found.runs.values():
                if run["links"].get("queue_item") == launch.item:
                    launch.run, launch.run_id, launch.run_via = run, run["id"], launch.run_via or "config"
        if launch.execution is None and searching:
            launch.execution, launch.execution_via = _execution_of(launch, executions)
        if launch.execution is not None and launch.job_id is None:
            named = list(launch.execution["links"].get("vertex_jobs") or [])
            if len(named) == 1:
                launch.job_id, launch.job_via = named[0], "log"
        if launch.execution is not None and launch.item and launch.item in (
                launch.execution["links"].get("queue_items") or []):
            launch.item_via = "log"
        if launch.execution is not None and launch.job_id and launch.job_id in (
                launch.execution["links"].get("vertex_jobs") or []):
            launch.job_via = "log"
    if launch.run is not None and launch.run_via is None and launch.item \
            and launch.run["links"].get("queue_item") == launch.item:
        launch.run_via = "config"  # no job to label it: its config names the launch's queue item
    if launch.job is None and launch.item and launch.execution is not None:
        # the execution launched several jobs: the one whose env names the queue item is this launch's
        wanted.setdefault("vertex", set()).update(
            j for j in launch.execution["links"].get("vertex_jobs") or [] if j not in found.jobs)
    if launch.job_id and launch.job is None:
        wanted.setdefault("vertex", set()).add(launch.job_id)
    if launch.run_id and launch.run is None:
        wanted.setdefault("wandb", set()).add(launch.run_id)
    if launch.run_id and launch.job is None and not launch.job_id:
        wanted.setdefault("vertex-label", set()).add(launch.run_id)


def _execution_of(launch: _Launch, executions: list[Row]) -> tuple[Row | None, str | None]:
    """The execution whose logs name the launch's job or queue item; else the one running when the job
    was created, if only one was (the time window, the weakest proof)."""
    for execution in executions:
        links = execution["links"]
        if (launch.job_id and launch.job_id in (links.get("vertex_jobs") or [])) or \
                (launch.item and launch.item in (links.get("queue_items") or [])):
            return execution, "log"
    created = epoch(launch.job["created"]) if launch.job is not None else None
    if created is None:
        return None, None
    # an execution whose logs were read and name other jobs did not launch this one
    candidates = [e for e in executions if _ran_when(e, created) and not (e["links"].get("vertex_jobs"))]
    if len(candidates) == 1:
        return candidates[0], "time"
    return None, None


def _hops(launches: list[_Launch], lone: Row | None, found: Found, lone_items: list[str]) -> list[Hop]:
    hops: list[Hop] = []
    if lone is not None:  # an execution with several launches (or none): it heads the tree
        for item in lone_items:
            hops.append(Hop("queue_item", item, "SUCCEEDED", f"taken by {lone['id']}", via="log"))
        hops.append(_from_row("execution", lone, "log" if lone_items or launches else None, None))
    for launch in launches:
        hops.extend(_launch_hops(launch, found, with_execution=lone is None))
    return hops


def _launch_hops(launch: _Launch, found: Found, with_execution: bool) -> list[Hop]:
    hops: list[Hop] = []
    parent: str | None = None
    if with_execution:
        if launch.item:
            taken = launch.execution is not None and launch.item_via == "log"
            hops.append(Hop("queue_item", launch.item, "SUCCEEDED" if taken else "UNKNOWN",
                            f"taken by {launch.execution['id']}" if taken and launch.execution else
                            "named by the launch; W&B Launch queues are not read", via=launch.item_via))
            parent = launch.item
        else:
            hops.append(Hop("queue_item", None, message="no system named the queue item", found=False))
        if launch.execution is not None:
            hops.append(_from_row("execution", launch.execution, launch.execution_via, parent))
            parent = launch.execution["id"]
        else:
            hop = _unfound("execution", found, "no execution's logs name this launch")
            hop.parent = parent
            hops.append(hop)
    else:
        parent = launch.execution["id"] if launch.execution is not None else None
    if launch.job is not None:
        hops.append(_from_row("vertex_job", launch.job, launch.job_via, parent))
        parent = launch.job["id"]
    else:
        hop = _unfound("vertex_job", found, f"no Vertex AI job {launch.job_id} found" if launch.job_id else
                       f"no Vertex AI job labelled wandb-run-id={launch.run_id}" if launch.run_id else
                       "no system named the Vertex AI job", launch.job_id)
        hop.parent = parent
        hops.append(hop)
    if launch.run is not None:
        hops.append(_from_row("wandb_run", launch.run, launch.run_via, parent))
    else:
        hop = _unfound("wandb_run", found, f"no W&B run {launch.run_id} found" if launch.run_id else
                       "no system named the W&B run", launch.run_id)
        hop.parent, hop.via = parent, launch.run_via if launch.run_id else None
        hops.append(hop)
    return hops


def _unfound(kind: str, found: Found, why: str, id_: str | None = None) -> Hop:
    """A hop not found: UNKNOWN because its system could not be asked (with the reason), or not there."""
    reason = found.failed.get(PROBE_OF[kind])
    if reason:
        return Hop(kind, id_, message=reason, unknown=True, found=False)
    return Hop(kind, id_, message=why, found=False)
