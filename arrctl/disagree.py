"""Where the systems of one launch disagree (pure rules over the rows of one refresh, links joined).

SPEC `check`: a W&B run crashed while its Vertex job runs, a Vertex job ended while its run still
says running, a job waiting longer than the agent's start timeout, and (issue 17) a runner
execution that ended while a job it launched is still starting. Each is a WARNING reported once,
like a failure; a crash whose Vertex job still runs is W&B's crash detection misfiring (it marks
a run crashed when its heartbeats stop, e.g. behind a network partition, while the training
goes on), so it is a WARNING and its `failure` is never paged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from arrctl.model import TERMINAL_STATUSES, WANDB_SOURCES, Row, SourceResult, epoch

STARTING = frozenset({"QUEUED", "PENDING"})
# a run's last state reaches W&B a little after its container ends; only a longer silence disagrees
END_GRACE_S = 120.0


@dataclass(frozen=True)
class Disagreement:
    """One disagreement between the systems of a launch."""

    kind: str  # crashed_while_running | ended_while_running | start_timeout | runner_ended_while_starting
    row: Row  # the item it is reported about
    message: str
    misfire: tuple[str, str] | None = None  # the failure (source, id) it stands for: never paged

    @property
    def key(self) -> tuple[str, str]:
        """What the store remembers it was reported as (one report per kind and item)."""
        return (f"disagree:{self.kind}", self.row["id"])


def _ago(seconds: float) -> str:
    from arrctl.render import human_duration

    return human_duration(seconds)


def find(results: Mapping[str, SourceResult], now: float, start_timeout_s: float) -> list[Disagreement]:
    """Every disagreement the rows of one refresh show (rows shown from memory included: they were seen)."""
    jobs = {row["id"]: row for row in (results["vertex"].rows if "vertex" in results else [])}
    running_runs = {row["id"]: row for row in (results["active"].rows if "active" in results else [])
                    if row["status"] == "RUNNING"}
    found: list[Disagreement] = []
    for source in WANDB_SOURCES:
        for run in results[source].rows if source in results else []:
            its_job = jobs.get(run["links"].get("vertex_job") or "")
            if run["raw_status"] == "crashed" and its_job is not None and its_job["status"] == "RUNNING":
                found.append(Disagreement("crashed_while_running", {**run, "source": source},  # type: ignore[misc]
                                          f"W&B says crashed, but its Vertex AI job {its_job['id']} is still RUNNING",
                                          misfire=(source, run["id"])))
    for job in jobs.values():
        its_run = running_runs.get(job["links"].get("wandb_run") or "")
        ended = epoch(job["finished"])
        if its_run is not None and job["status"] in TERMINAL_STATUSES and ended is not None and now - ended > END_GRACE_S:
            found.append(Disagreement("ended_while_running", job,
                                      f"ended {job['status']} {_ago(now - ended)} ago, but its W&B run {its_run['id']} "
                                      "still says running"))
        created = epoch(job["created"])
        if job["status"] in STARTING and created is not None and now - created > start_timeout_s:
            found.append(Disagreement("start_timeout", job,
                                      f"{job['status'].lower()} for {_ago(now - created)}, longer than the agent's "
                                      f"start timeout ({_ago(start_timeout_s)})"))
    for execution in results["runner"].rows if "runner" in results else []:
        if execution["status"] not in TERMINAL_STATUSES:
            continue
        for job_id in execution["links"].get("vertex_jobs") or []:
            launched = jobs.get(job_id)
            if launched is not None and launched["status"] in STARTING:
                found.append(Disagreement("runner_ended_while_starting", execution,
                                          f"ended {execution['status']} while the Vertex AI job {job_id} it launched "
                                          f"is still {launched['status']}"))
    return found


def problems(found: list[Disagreement]) -> list[dict[str, object]]:
    """The WARNING problems of `check` (SPEC keys; `category` null: not a failure)."""
    from arrctl.health import problem

    return [problem("WARNING", d.kind, d.row["source"], d.row["id"], d.message, None, d.row["url"]) for d in found]
