"""`arrctl launch`: a small pure state machine that ends at the first conclusive signal.

Fed observations (Vertex AI jobs, the execution's state, what its logs say, the clock), it
concludes: success as soon as *this execution's* Vertex AI job is QUEUED, PENDING, RUNNING or
SUCCEEDED (the predecessor's fast path forgot to return on RUNNING); failure when
that job FAILED, the execution failed, a fatal rule matched its logs, or the runner ended
without launching anything (`Runs: 0`); timeout when time runs out.

Which job is this execution's: other agent executions and colleagues create Vertex jobs too,
so "created after the start" proves nothing. The execution's logs say it (`evidence_from_lines`):
the job's resource name when printed (the aiplatform SDK logs `CustomJob created. Resource name:
projects/N/locations/R/customJobs/ID`, google/cloud/aiplatform/base.py `_log_create_complete`),
the W&B run id it launched — W&B Launch labels the job `wandb-run-id=<run id>`
(wandb/sdk/launch/runner/vertex_runner.py, WANDB_RUN_ID_KEY) and puts WANDB_RUN_ID in its env
— and the run queue item, which it puts in the job's env as WANDB_LAUNCH_TRACE_ID
(wandb/sdk/launch/_project_spec.py `get_env_vars_dict`). The time window is the fallback, used
only when nothing better exists (the logs cannot be read, or they showed a launch UNNAMED_WAIT_S ago without naming
it), and the outcome says which it was (`match`: log, label, config or time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from arrctl.model import Row, epoch

JOB_STARTED = frozenset({"QUEUED", "PENDING", "RUNNING", "SUCCEEDED"})
JOB_ENDED_BADLY = frozenset({"FAILED", "CANCELLED", "TIMEOUT"})
EXECUTION_ENDED_BADLY = frozenset({"FAILED", "CANCELLED", "TIMEOUT"})
CLOCK_SLACK_S = 5.0  # the Vertex job's createTime comes from Google's clock, not ours
MATCH_WORDS = {"log": "its resource name in the execution's logs",
               "label": "the W&B run id in the execution's logs (label wandb-run-id)",
               "config": "the run queue item in the execution's logs (the job's WANDB_LAUNCH_TRACE_ID)",
               "time": "time only: created after the start (the logs named no job)"}

_RESOURCE = re.compile(r"CustomJob created\.?\s+(?:Resource name:\s*)?projects/[^/\s]+/locations/[\w-]+/customJobs/(\d+)")
_RUN_ID = re.compile(r"(?:\brun[ _]id\b[\"']?\s{0,3}[:=]?\s{0,3}[\"']?|\bwandb-run-id[=:]\s*|\bWANDB_RUN_ID[=:]\s*[\"']?)"
                     r"([a-z0-9]{6,32})\b")
_QUEUE_ITEM = re.compile(r"(?:runQueueItemId|run_queue_item_id|WANDB_LAUNCH_TRACE_ID)[\"']?\s{0,3}[:=]\s{0,3}[\"']?"
                         r"([A-Za-z0-9+/]{8,}={0,2})")
_LAUNCHED = re.compile(r"Launch agent received job|Launching run\b|CustomJob created|Job submitted to Vertex")
_RUNS = re.compile(r"^\s*Runs:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Evidence:
    """What an execution's logs say about the jobs it launched (pure data)."""

    vertex_jobs: tuple[str, ...] = ()  # custom job ids from printed resource names
    run_ids: tuple[str, ...] = ()  # W&B run ids it launched
    queue_items: tuple[str, ...] = ()  # run queue items it took
    launched: bool = False  # the logs show it took a job, named or not
    runs: int | None = None  # the agent's summary `Runs: N`, once it ended

    @property
    def names_a_job(self) -> bool:
        """Whether the logs name anything a Vertex job can be matched by."""
        return bool(self.vertex_jobs or self.run_ids or self.queue_items)

    def to_dict(self) -> dict[str, Any]:
        """The plain form a worker sends over its pipe."""
        return {"vertex_jobs": list(self.vertex_jobs), "run_ids": list(self.run_ids),
                "queue_items": list(self.queue_items), "launched": self.launched, "runs": self.runs}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Evidence":
        """The inverse of to_dict (an absent report is no evidence)."""
        data = data or {}
        return cls(tuple(data.get("vertex_jobs") or ()), tuple(data.get("run_ids") or ()),
                   tuple(data.get("queue_items") or ()), bool(data.get("launched")), data.get("runs"))


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def evidence_from_lines(lines: Sequence[str]) -> Evidence:
    """The jobs an execution's log lines (in time order) name, and whether it launched any (pure)."""
    jobs, runs, items, launched, count = [], [], [], False, None
    for line in lines:
        jobs += _RESOURCE.findall(line)
        runs += _RUN_ID.findall(line)
        items += _QUEUE_ITEM.findall(line)
        launched = launched or _LAUNCHED.search(line) is not None
        found = _RUNS.match(line)
        if found:
            count = int(found.group(1))
    return Evidence(_unique(jobs), _unique(runs), _unique(items), launched or bool(jobs or runs or items), count)


def match_job(jobs: Sequence[Row], evidence: Evidence, started_at: float,
              logs_readable: bool | None, unnamed_wait_over: bool = True) -> tuple[Row | None, str | None]:
    """This execution's Vertex job among `jobs` and how it was matched; (None, None) when none is yet.

    `logs_readable`: None before the logs were first tried (they may name it: wait), False when
    they could not be read (the time window is all there is), True when they were.
    `unnamed_wait_over`: the logs showed a launch long enough ago (UNNAMED_WAIT_S) that they will
    not name its job (an agent that prints no ids).
    """
    for via, key, wanted in (("log", lambda j: j["id"], evidence.vertex_jobs),
                             ("label", lambda j: (j.get("links") or {}).get("wandb_run"), evidence.run_ids),
                             ("config", lambda j: (j.get("links") or {}).get("queue_item"), evidence.queue_items)):
        found = [j for j in jobs if wanted and key(j) in wanted]
        if found:
            return min(found, key=lambda j: epoch(j["created"]) or 0.0), via
    if evidence.names_a_job or logs_readable is None or (logs_readable and not evidence.launched):
        return None, None  # the logs will name it (or nothing was launched yet): never guess
    if logs_readable and not unnamed_wait_over:
        # The agent prints the run id and the resource name a few lines after it took the job:
        # wait a while for them rather than guess a colleague's job by its time.
        return None, None
    fresh = [j for j in jobs if (epoch(j["created"]) or 0.0) >= started_at - CLOCK_SLACK_S]
    if not fresh:
        return None, None
    return min(fresh, key=lambda j: epoch(j["created"]) or 0.0), "time"


UNNAMED_WAIT_S = 10.0


@dataclass(frozen=True)
class Outcome:
    """How a launch ended."""

    result: str  # success | failure | timeout
    via: str  # vertex | execution | logs | timeout
    message: str
    execution: str
    job: Row | None = None
    rule: str | None = None
    match: str | None = None  # how the job was found to be this execution's: log | label | config | time

    @property
    def exit_code(self) -> int:
        """0 success, 1 failure, 124 timeout (as timeout(1) does)."""
        from arrctl.kinds import ExitStatus

        return {"success": ExitStatus.OK, "failure": ExitStatus.ERROR, "timeout": ExitStatus.TIMEOUT}[self.result]

    def to_dict(self, elapsed_s: float) -> dict[str, Any]:
        """The `--json` result object."""
        job = self.job
        return {"result": self.result, "via": self.via, "message": self.message, "execution": self.execution,
                "rule": self.rule, "match": self.match, "elapsed_s": round(elapsed_s, 1),
                "job": None if job is None else {k: job[k] for k in ("id", "name", "status", "raw_status", "region", "url")},
                **self.names()}

    def names(self) -> dict[str, str | None]:
        """The W&B run and queue item of this launch, from its job's links (label wandb-run-id, env)."""
        links = (self.job["links"] if self.job is not None else None) or {}
        return {"wandb_run": links.get("wandb_run"), "queue_item": links.get("queue_item")}


@dataclass
class LaunchWaiter:
    """Waits for the first conclusive signal about one execution started at `started_at` (epoch s)."""

    execution: str
    started_at: float
    timeout_s: float
    ends_at: float | None = None  # when the wait ends (epoch s); default started_at + timeout_s
    outcome: Outcome | None = None
    seen: dict[str, str] = field(default_factory=dict)  # what the progress line reports
    evidence: Evidence = field(default_factory=Evidence)
    logs_readable: bool | None = None  # None: not tried yet; False: they could not be read; True: read
    jobs: list[Row] = field(default_factory=list)  # the latest Vertex AI jobs seen
    now: float | None = None  # the latest clock reading (on_clock)
    launched_at: float | None = None  # when the logs first showed a launch

    def on_logs(self, evidence: Evidence | None) -> Outcome | None:
        """What the execution's logs say so far (None: they could not be read this time)."""
        if self.outcome:
            return self.outcome
        if evidence is not None:
            self.evidence, self.logs_readable = evidence, True
            if evidence.launched and self.launched_at is None:
                self.launched_at = self.now if self.now is not None else self.started_at
        elif not self.logs_readable:
            self.logs_readable = False  # never read: the time window is the fallback
        return self._judge_jobs()

    def on_vertex(self, jobs: Sequence[Row]) -> Outcome | None:
        """Vertex AI jobs of every region; the one this execution launched decides."""
        if self.outcome:
            return self.outcome
        self.jobs = list(jobs)
        return self._judge_jobs()

    def _judge_jobs(self) -> Outcome | None:
        waited = self.launched_at is not None and self.now is not None \
            and self.now - self.launched_at >= UNNAMED_WAIT_S
        job, via = match_job(self.jobs, self.evidence, self.started_at, self.logs_readable, waited)
        if job is None:
            self.seen["vertex"] = "no Vertex AI job yet" if not self.evidence.names_a_job else \
                "its Vertex AI job not listed yet"
            return None
        self.seen["vertex"] = f"Vertex AI job {job['id']} {job['raw_status'] or job['status']}"
        if job["status"] in JOB_STARTED:
            label = job["name"] or job["id"]
            return self._end("success", "vertex", f"Vertex AI job {label} is {job['raw_status'] or job['status']} "
                                                  f"in {job['region']}", job=job, match=via)
        if job["status"] in JOB_ENDED_BADLY:
            return self._end("failure", "vertex", job["message"] or f"Vertex AI job {job['id']} {job['status']}",
                             job=job, match=via)
        return None

    def on_execution(self, row: Row | None) -> Outcome | None:
        """The execution itself: a failure ends the wait; so does a success, good only if it launched."""
        if self.outcome or row is None:
            return self.outcome
        self.seen["execution"] = f"execution {row['status']}"
        if row["status"] in EXECUTION_ENDED_BADLY:
            return self._end("failure", "execution", row["message"] or f"execution {row['status']} ({row['raw_status']})")
        if row["status"] == "SUCCEEDED":
            if self.evidence.runs == 0:  # the agent idled out: it took no job from the queue
                return self._end("failure", "execution", "the runner finished without launching anything (Runs: 0)")
            return self._end("success", "execution", row["message"] or "runner finished successfully")
        return None

    def on_fatal(self, message: str | None, rule: str | None) -> Outcome | None:
        """A fatal rule of the extractor matched a line of the execution's logs."""
        if self.outcome or not message:
            return self.outcome
        return self._end("failure", "logs", message, rule=rule)

    def on_clock(self, now: float) -> Outcome | None:
        """Time passing: the timeout."""
        if self.outcome:
            return self.outcome
        self.now = now
        if now >= (self.ends_at if self.ends_at is not None else self.started_at + self.timeout_s):
            return self._end("timeout", "timeout",
                             f"no conclusive signal within {self.timeout_s:g}s; "
                             f"see `arrctl explain {self.execution}`")
        return None

    def progress(self, now: float) -> str:
        """One progress line: elapsed time and what each path has seen."""
        parts = [self.seen.get("execution", "execution starting"), self.seen.get("vertex", "no Vertex AI job yet")]
        return f"  {now - self.started_at:4.0f}s  " + " · ".join(parts)

    def _end(self, result: str, via: str, message: str, job: Row | None = None, rule: str | None = None,
             match: str | None = None) -> Outcome:
        self.outcome = Outcome(result, via, message, self.execution, job=job, rule=rule, match=match)
        return self.outcome
