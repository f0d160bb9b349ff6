"""`arrctl launch`: a small pure state machine that ends at the first conclusive signal.

Fed observations (Vertex AI jobs, the execution's state, its log lines, the clock), it
concludes: success as soon as a Vertex AI job created after the start is QUEUED, PENDING,
RUNNING or SUCCEEDED (the predecessor's fast path forgot to return on RUNNING: seeds/003);
failure when that job FAILED, the execution failed, or a fatal rule matched its logs;
timeout when time runs out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from arrctl.model import Row, epoch

JOB_STARTED = frozenset({"QUEUED", "PENDING", "RUNNING", "SUCCEEDED"})
EXECUTION_ENDED_BADLY = frozenset({"FAILED", "CANCELLED", "TIMEOUT"})
CLOCK_SLACK_S = 5.0  # the Vertex job's createTime comes from Google's clock, not ours


@dataclass(frozen=True)
class Outcome:
    """How a launch ended."""

    result: str  # success | failure | timeout
    via: str  # vertex | execution | logs | timeout
    message: str
    execution: str
    job: Row | None = None
    rule: str | None = None

    @property
    def exit_code(self) -> int:
        """0 success, 1 failure, 124 timeout (as timeout(1) does)."""
        return {"success": 0, "failure": 1, "timeout": 124}[self.result]

    def to_dict(self, elapsed_s: float) -> dict[str, Any]:
        """The `--json` result object."""
        job = self.job
        return {"result": self.result, "via": self.via, "message": self.message, "execution": self.execution,
                "rule": self.rule, "elapsed_s": round(elapsed_s, 1),
                "job": None if job is None else {k: job[k] for k in ("id", "name", "status", "raw_status", "region", "url")}}


@dataclass
class LaunchWaiter:
    """Waits for the first conclusive signal about one execution started at `started_at` (epoch s)."""

    execution: str
    started_at: float
    timeout_s: float
    outcome: Outcome | None = None
    seen: dict[str, str] = field(default_factory=dict)  # what the progress line reports

    def on_vertex(self, jobs: Sequence[Row]) -> Outcome | None:
        """Vertex AI jobs of every region; only those created after the start count."""
        if self.outcome:
            return self.outcome
        fresh = [j for j in jobs if (epoch(j["created"]) or 0.0) >= self.started_at - CLOCK_SLACK_S]
        fresh.sort(key=lambda j: epoch(j["created"]) or 0.0)
        if not fresh:
            self.seen["vertex"] = "no Vertex AI job yet"
            return None
        job = fresh[0]
        self.seen["vertex"] = f"Vertex AI job {job['id']} {job['raw_status'] or job['status']}"
        if job["status"] in JOB_STARTED:
            label = job["name"] or job["id"]
            return self._end("success", "vertex", f"Vertex AI job {label} is {job['raw_status'] or job['status']} "
                                                  f"in {job['region']}", job=job)
        if job["status"] in ("FAILED", "CANCELLED", "TIMEOUT"):
            return self._end("failure", "vertex", job["message"] or f"Vertex AI job {job['id']} {job['status']}", job=job)
        return None

    def on_execution(self, row: Row | None) -> Outcome | None:
        """The execution itself: a failure ends the wait; a success without a job is success too."""
        if self.outcome or row is None:
            return self.outcome
        self.seen["execution"] = f"execution {row['status']}"
        if row["status"] in EXECUTION_ENDED_BADLY:
            return self._end("failure", "execution", row["message"] or f"execution {row['status']} ({row['raw_status']})")
        if row["status"] == "SUCCEEDED":
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
        if now - self.started_at >= self.timeout_s:
            return self._end("timeout", "timeout",
                             f"no conclusive signal within {self.timeout_s:g}s; "
                             f"see `arrctl explain {self.execution}`")
        return None

    def progress(self, now: float) -> str:
        """One progress line: elapsed time and what each path has seen."""
        parts = [self.seen.get("execution", "execution starting"), self.seen.get("vertex", "no Vertex AI job yet")]
        return f"  {now - self.started_at:4.0f}s  " + " · ".join(parts)

    def _end(self, result: str, via: str, message: str, job: Row | None = None, rule: str | None = None) -> Outcome:
        self.outcome = Outcome(result, via, message, self.execution, job=job, rule=rule)
        return self.outcome
