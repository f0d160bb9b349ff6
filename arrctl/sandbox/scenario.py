"""Scenarios: fixture directories whose times are offsets from the sandbox's start (clocks: clock.py).

A scenario is `arrctl/sandbox/scenarios/<name>/` (package data: an installed wheel has them) with `scenario.json` (`description`, `speed`, optional
`base` naming a scenario whose fixture files it reuses, optional `launch`) beside per-service
fixture files. Every time in a fixture is an offset in scenario seconds from the sandbox's start
(negative = in the past), so the same files describe a cloud that keeps changing.
"""

from __future__ import annotations

import json
import pathlib
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from arrctl.sandbox.base import Clock

SCENARIOS_DIR = pathlib.Path(__file__).resolve().parent / "scenarios"
FOREVER = float("inf")


def scenario_dir(name: str, root: pathlib.Path = SCENARIOS_DIR) -> pathlib.Path:
    """The directory of a named scenario (a path is accepted as is); ValueError if absent."""
    candidate = pathlib.Path(name)
    path = candidate if candidate.is_absolute() or "/" in name else root / name
    if not (path / "scenario.json").is_file():
        known = ", ".join(available(root)) or "none"
        raise ValueError(f"unknown sandbox scenario {name!r} (known: {known})")
    return path


def available(root: pathlib.Path = SCENARIOS_DIR) -> list[str]:
    """Names of the scenarios under root."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "scenario.json").is_file())


def read_meta(directory: pathlib.Path, _seen: tuple[pathlib.Path, ...] = ()) -> dict[str, Any]:
    """scenario.json of a directory merged over its `base` chain (the child's keys win).

    `_chain` lists the directories, the scenario's own first, for fixture look-ups.
    """
    directory = directory.resolve()
    if directory in _seen:
        raise ValueError(f"scenario {directory.name}: circular base")
    own: dict[str, Any] = json.loads((directory / "scenario.json").read_text())
    if "base" not in own:
        return {**own, "_chain": [str(directory)]}
    parent = read_meta(directory.parent / own["base"], _seen + (directory,))
    merged = {**parent, **{k: v for k, v in own.items() if k != "base"}}
    merged["_chain"] = [str(directory)] + parent["_chain"]
    return merged


def chain_of(directory: pathlib.Path) -> list[pathlib.Path]:
    """The directory, then its base, then the base's base..."""
    return [pathlib.Path(p) for p in read_meta(directory)["_chain"]]


def resolve(directory: pathlib.Path, relative: str) -> pathlib.Path | None:
    """A fixture file from the scenario or, failing that, from its base chain."""
    for folder in chain_of(directory):
        if (folder / relative).exists():
            return folder / relative
    return None


def resolve_dir(directory: pathlib.Path, relative: str) -> pathlib.Path:
    """The first directory of the chain that holds `relative` (the scenario's own otherwise)."""
    found = resolve(directory, relative)
    return found.parent if found is not None else directory


@dataclass
class Timeline:
    """States over scenario time: [(offset, state), ...] in order; invisible before the first."""

    steps: list[tuple[float, str]]

    @classmethod
    def parse(cls, raw: list[list[Any]], shift: float = 0.0) -> "Timeline":
        """From fixture JSON [[offset, "STATE"], ...], every offset moved by shift."""
        steps = sorted(((float(o) + shift, str(s)) for o, s in raw), key=lambda step: step[0])
        if not steps:
            raise ValueError("a timeline needs at least one [offset, state] step")
        return cls(steps)

    @property
    def created(self) -> float:
        """Offset at which the item appears."""
        return self.steps[0][0]

    def visible(self, t: float) -> bool:
        """Whether the item exists at t."""
        return t >= self.created

    def state(self, t: float) -> str | None:
        """State at t (None before the item exists)."""
        current = None
        for offset, state in self.steps:
            if offset <= t:
                current = state
        return current

    def changed(self, t: float) -> float:
        """Offset of the last transition at or before t."""
        return max((o for o, _ in self.steps if o <= t), default=self.created)

    def first(self, states: set[str], t: float) -> float | None:
        """Offset of the first step in one of states, if reached by t."""
        for offset, state in self.steps:
            if state in states and offset <= t:
                return offset
        return None


@dataclass
class LogSpec:
    """An execution's log: text lines spread evenly over [start, end] scenario offsets."""

    lines: list[str]
    start: float
    end: float

    def timed(self) -> list[tuple[float, int, str]]:
        """(offset, index, text) for every line."""
        count = len(self.lines)
        step = (self.end - self.start) / (count - 1) if count > 1 else 0.0
        return [(self.start + i * step, i, text) for i, text in enumerate(self.lines)]


@dataclass
class Attempt:
    """One attempt of one task of an execution: its own span of time, log and outcome.

    Cloud Run retries a failed task (`maxRetries`, 3 by default:
    https://cloud.google.com/run/docs/configuring/max-retries); every attempt logs under the
    same execution label, told apart by `run.googleapis.com/task_index` and
    `run.googleapis.com/task_attempt` (0, 1, ...).
    """

    task: int
    number: int
    start: float
    end: float | None  # None: still running when the scenario ends
    outcome: str  # SUCCEEDED | FAILED | CANCELLED, or the execution's state while it runs
    log: LogSpec | None = None


@dataclass
class Execution:
    """One runner execution of the scenario."""

    id: str
    region: str
    timeline: Timeline
    log: LogSpec | None = None  # the log of a one-task, one-attempt execution (attempts[0])
    message: str | None = None  # the Completed condition's message when it failed
    launched: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    task_count: int = 1
    reason: str | None = None  # the Completed condition's common `reason` (instead of executionReason)
    max_retries: int = 3

    def tasks(self) -> list[list[Attempt]]:
        """The attempts of each task, by task index, in order."""
        out: list[list[Attempt]] = [[] for _ in range(self.task_count)]
        for attempt in self.attempts:
            out[attempt.task].append(attempt)
        return out


@dataclass
class CustomJob:
    """One Vertex AI custom job of the scenario."""

    id: str
    region: str
    display_name: str
    timeline: Timeline
    machine_type: str = "g2-standard-4"
    accelerator_type: str = "NVIDIA_L4"
    accelerator_count: int = 1
    error: dict[str, Any] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    env: list[dict[str, str]] = field(default_factory=list)  # containerSpec.env, as W&B Launch fills it
    logs: dict[str, LogSpec] = field(default_factory=dict)  # per replica (`workerpool0-0`), in order


@dataclass
class Build:
    """One Cloud Build build of the scenario."""

    id: str
    timeline: Timeline
    region: str = "global"
    fixture: dict[str, Any] = field(default_factory=dict)  # the rest of the fixture object
    log: LogSpec | None = None  # the build's log (every step), spread over its WORKING time


@dataclass
class Launch:
    """What happened after one `jobs/J:run`."""

    operation: str  # uuid
    project: str
    execution: Execution


class World:
    """The scenario's resources, shared by the four Google services created with one clock."""

    def __init__(self, directory: pathlib.Path, clock: Clock) -> None:
        self.directory = directory
        self.clock = clock
        self.meta = read_meta(directory)
        self.lock = threading.Lock()
        run = self._load_json("run.json")
        self.job: str = run.get("job", "vertex-ai-launcher")
        self.image: str = run.get("image", "")
        self.executions: list[Execution] = [self._execution(e) for e in run.get("executions", [])]
        self.custom_jobs: list[CustomJob] = [
            self._custom_job(j) for j in self._load_json("vertex.json").get("customJobs", [])]
        self.builds: list[Build] = [
            self._build(b) for b in self._load_json("build.json").get("builds", [])]
        self.launches: dict[str, Launch] = {}
        self._launch_count = 0

    _shared: "weakref.WeakKeyDictionary[Any, dict[str, World]]" = weakref.WeakKeyDictionary()
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls, directory: pathlib.Path, clock: Clock) -> "World":
        """The one World of this scenario directory and clock (services share its launches)."""
        with cls._shared_lock:
            worlds = cls._shared.setdefault(clock, {})
            key = str(pathlib.Path(directory).resolve())
            if key not in worlds:
                worlds[key] = cls(pathlib.Path(directory), clock)
            return worlds[key]

    def _load_json(self, name: str) -> dict[str, Any]:
        """A fixture JSON file from the scenario chain ({} when absent)."""
        path = resolve(self.directory, name)
        return json.loads(path.read_text()) if path else {}

    def _log(self, relative: str | None, span: list[float] | None, timeline: Timeline,
             shift: float = 0.0) -> LogSpec | None:
        """A LogSpec from a text file; by default spread over the execution's running time."""
        if not relative:
            return None
        path = resolve(self.directory, relative)
        if path is None:
            raise ValueError(f"scenario {self.directory.name}: log file {relative} not found")
        # surrogateescape: a log may hold invalid UTF-8 (hostile scenario); it is sent as raw bytes
        lines = [line for line in path.read_text(errors="surrogateescape").splitlines() if line.strip()]
        if span:
            start, end = float(span[0]) + shift, float(span[1]) + shift
        else:
            begun = timeline.first({"RUNNING"}, FOREVER) or timeline.created
            ended = timeline.first({"SUCCEEDED", "FAILED", "CANCELLED"}, FOREVER)
            start = begun + 1.0
            end = (ended - 1.0) if ended is not None else start + len(lines)
        return LogSpec(lines, start, max(start, end))

    def _execution(self, raw: dict[str, Any], shift: float = 0.0, id: str | None = None,
                   region: str | None = None) -> Execution:
        """An Execution from its fixture object (`tasks` of `attempts`, or one `log`)."""
        timeline = Timeline.parse(raw["timeline"], shift)
        execution = Execution(
            id=id or raw["id"], region=region or raw["region"], timeline=timeline,
            message=raw.get("message"), launched=id is not None, reason=raw.get("reason"),
            max_retries=int(raw.get("maxRetries", 3)))
        begun = timeline.first({"RUNNING"}, FOREVER) or timeline.created
        ended = timeline.first({"SUCCEEDED", "FAILED", "CANCELLED"}, FOREVER)
        final = timeline.steps[-1][1]
        tasks = raw.get("tasks")
        if not tasks:
            log = self._log(raw.get("log"), raw.get("log_span"), timeline, shift)
            execution.log = log
            execution.attempts = [Attempt(0, 0, begun, ended, final, log)]
            return execution
        execution.task_count = len(tasks)
        for index, task in enumerate(tasks):
            attempts = task.get("attempts") or [{}]
            span = ((ended - begun) / len(attempts)) if ended is not None else None
            for number, spec in enumerate(attempts):
                start = begun + number * span if span is not None else begun + number * 60.0
                end = start + span if span is not None else None
                # like an execution's log: from 1 s after the attempt starts to 1 s before it ends
                log = self._log(spec.get("log"), spec.get("log_span"),
                                Timeline([(start, "RUNNING")] + (
                                    [(end, "SUCCEEDED")] if end is not None else [])),
                                shift)
                execution.attempts.append(Attempt(index, number, start, end,
                                                  spec.get("outcome", final), log))
        return execution

    def _span_log(self, spec: Any, timeline: Timeline, running: str, ended: set[str],
                  shift: float) -> LogSpec | None:
        """A log (`"logs/x.log"` or `{"log", "log_span"?}`) spread by default from 1 s after the item
        enters `running` to 1 s before it reaches one of `ended`."""
        if isinstance(spec, str):
            spec = {"log": spec}
        begun = timeline.first({running}, FOREVER) or timeline.created
        end = timeline.first(ended, FOREVER)
        span = spec.get("log_span")
        if span is None:
            span = [begun + 1.0 - shift, (end - 1.0 - shift) if end is not None else begun + 60.0 - shift]
        return self._log(spec.get("log"), span, timeline, shift)

    def _custom_job(self, raw: dict[str, Any], shift: float = 0.0) -> CustomJob:
        """A CustomJob from its fixture object (`logs`: replica name -> log, see _span_log)."""
        timeline = Timeline.parse(raw["timeline"], shift)
        ended = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
        logs = {replica: log for replica, spec in (raw.get("logs") or {}).items()
                if (log := self._span_log(spec, timeline, "JOB_STATE_RUNNING", ended, shift)) is not None}
        return CustomJob(
            id=str(raw["id"]), region=raw["region"], display_name=raw["displayName"], timeline=timeline,
            machine_type=raw.get("machineType", "g2-standard-4"),
            accelerator_type=raw.get("acceleratorType", "NVIDIA_L4"),
            accelerator_count=int(raw.get("acceleratorCount", 1)),
            error=raw.get("error"), labels=raw.get("labels", {}), env=list(raw.get("env", [])), logs=logs)

    def _build(self, raw: dict[str, Any]) -> Build:
        """A Build from its fixture object (`log`: its log, see _span_log)."""
        rest = {k: v for k, v in raw.items() if k not in ("id", "timeline", "region", "log")}
        timeline = Timeline.parse(raw["timeline"])
        ended = {"SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED"}
        log = self._span_log(raw["log"], timeline, "WORKING", ended, 0.0) if raw.get("log") else None
        return Build(id=raw["id"], timeline=timeline, region=raw.get("region", "global"), fixture=rest, log=log)

    def launch(self, project: str, region: str) -> Launch:
        """Start an execution now, scripted by the scenario's `launch` key.

        Its Vertex job is what W&B Launch submits: labelled `wandb-run-id=<run id>`
        (wandb/sdk/launch/runner/vertex_runner.py) with WANDB_API_KEY, WANDB_RUN_ID and
        WANDB_LAUNCH_TRACE_ID (the run queue item) in its containers' env, in plain text
        (_project_spec.py `get_env_vars_dict`). `others` are jobs that colleagues and other agent
        executions create meanwhile. `{vertex_job}`, `{run_id}` and `{queue_item}` in the launch
        log are replaced by this launch's.
        """
        import base64
        import uuid

        from arrctl.sandbox import DEMO_WANDB_API_KEY, DEMO_WANDB_ENTITY, DEMO_WANDB_PROJECT

        spec = self.meta.get("launch", {})
        with self.lock:
            t0 = self.clock.t()
            self._launch_count += 1
            suffix = uuid.uuid4().hex[:5]
            exec_id = f"{self.job}-{suffix}"
            run_id = uuid.uuid4().hex[:8]
            queue_item = base64.b64encode(f"RunQueueItem:{uuid.uuid4().int % 10**6}".encode()).decode()
            job_id = ""
            job_spec = spec.get("vertex")
            if job_spec:
                job_id = str(8_000_000_000_000_000_000 + uuid.uuid4().int % 10**15)
                raw = {"id": job_id, "region": job_spec.get("region", region),
                       "displayName": job_spec.get("displayName", f"arr-coc-launch-{suffix}"),
                       **{k: v for k, v in job_spec.items() if k not in ("region", "displayName")}}
                job = self._custom_job(raw, shift=t0)
                job.labels = {**job.labels, "wandb-run-id": run_id}
                job.env = [{"name": "WANDB_API_KEY", "value": DEMO_WANDB_API_KEY},
                           {"name": "WANDB_PROJECT", "value": DEMO_WANDB_PROJECT},
                           {"name": "WANDB_ENTITY", "value": DEMO_WANDB_ENTITY},
                           {"name": "WANDB_LAUNCH", "value": "True"}, {"name": "WANDB_RUN_ID", "value": run_id},
                           {"name": "WANDB_LAUNCH_QUEUE_NAME", "value": "vertex-ai-queue"},
                           {"name": "WANDB_LAUNCH_TRACE_ID", "value": queue_item}]
                self.custom_jobs.append(job)
            for n, other in enumerate(spec.get("others", [])):
                raw = {"id": str(7_000_000_000_000_000_000 + uuid.uuid4().int % 10**15), "region": region,
                       "displayName": f"colleague-job-{n}", **other}
                self.custom_jobs.append(self._custom_job(raw, shift=t0))
            exec_spec = spec.get("execution", {"timeline": [[0, "PENDING"], [0.5, "RUNNING"]]})
            execution = self._execution(exec_spec, shift=t0, id=exec_id, region=region)
            for attempt in execution.attempts:  # launch logs name the job they submitted
                if attempt.log is not None:
                    attempt.log.lines = [line.replace("{vertex_job}", job_id or "unknown").replace("{run_id}", run_id)
                                         .replace("{queue_item}", queue_item) for line in attempt.log.lines]
            self.executions.append(execution)
            launch = Launch(operation=str(uuid.uuid4()), project=project, execution=execution)
            self.launches[launch.operation] = launch
            return launch
