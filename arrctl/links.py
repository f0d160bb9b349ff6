"""What each row is known to be part of: the `links` of rows, read from each system and joined (pure).

One launch passes through four systems, and each knows a part of the chain (re-read in wandb's
source, wandb/sdk/launch):
- the runner execution's logs (the agent's stderr, every line prefixed `wandb: `) print
  `launch: Launch agent received job:` and the run queue item pretty-printed over several lines
  (`{'runQueueItemId': '...', 'runSpec': {...}}`, agent/agent.py `run_job`), the aiplatform SDK's
  `CustomJob created. Resource name: projects/N/locations/R/customJobs/ID` where its logging
  reaches stdout (google/cloud/aiplatform/base.py `log_create_complete_with_getter`), and
  `launch: Job finished with ID: <id>` when the job ends (agent.py `_check_run_finished`; for
  Vertex the id is the CustomJob's `name`, the last part of its resource name);
- the Vertex AI job carries the label `wandb-run-id` (runner/vertex_runner.py WANDB_RUN_ID_KEY) and
  WANDB_LAUNCH_TRACE_ID, the queue item, in its containers' env (_project_spec.py `get_env_vars_dict`);
- the W&B run's config `_wandb` holds `launch_trace_id` and `launch_queue_name` (wandb_run.py,
  copied from WANDB_LAUNCH_TRACE_ID and WANDB_LAUNCH_QUEUE_NAME).

`join_links` puts them together after a refresh, so every row says what it is known to be part
of: a runner row `{"vertex_jobs": [...], "queue_items": [...]}`, a Vertex row `{"wandb_run": ...}`
(and `queue_item` from its env), a W&B row `{"vertex_job": ..., "queue_item": ...}`.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from arrctl.model import WANDB_SOURCES, Row, SourceResult

_FINISHED = re.compile(r"\bJob finished with ID:\s*(?:projects/[^/\s]+/locations/[\w-]+/customJobs/)?(\d{6,})\b")


def runner_links(lines: Sequence[str]) -> dict[str, list[str]]:
    """The Vertex jobs and run queue items an execution's log lines (in time order) name."""
    from arrctl.launch import evidence_from_lines

    evidence = evidence_from_lines(lines)
    jobs = list(evidence.vertex_jobs)
    for line in lines:
        jobs += [found for found in _FINISHED.findall(line) if found not in jobs]
    return {"vertex_jobs": jobs, "queue_items": list(evidence.queue_items)}


def launch_config_links(config: Mapping[str, Any]) -> dict[str, str]:
    """`queue_item` from a W&B run's config `_wandb` (its value wrapped as {"value": ...} or not)."""
    internal = config.get("_wandb")
    if isinstance(internal, Mapping) and isinstance(internal.get("value"), Mapping):
        internal = internal["value"]
    if not isinstance(internal, Mapping):
        return {}
    links: dict[str, str] = {}
    item = internal.get("launch_trace_id")
    if isinstance(item, str) and item:
        links["queue_item"] = item
    return links


def with_remembered(rows: Iterable[Row], remembered: Mapping[str, Mapping[str, Any]]) -> list[Row]:
    """Rows that know no links yet get those remembered for them (a runner's logs are read once)."""
    out: list[Row] = []
    for row in rows:
        known = remembered.get(row["id"])
        if known and not row["links"]:
            row = {**row, "links": dict(known)}  # type: ignore[misc]
        out.append(row)
    return out


def join_links(results: Mapping[str, SourceResult]) -> None:
    """Complete every row's links from the other sources' rows (the results' row lists are replaced).

    A W&B run's Vertex job is the job labelled with its id; its queue item is its config's, else
    its job's. Only what some system says is added: nothing is guessed from times here.
    """
    vertex_rows = results["vertex"].rows if "vertex" in results else []
    job_of_run: dict[str, Row] = {}
    for job in vertex_rows:
        run = job["links"].get("wandb_run")
        if run and run not in job_of_run:  # newest first: a re-submitted run keeps its newest job
            job_of_run[run] = job
    for source in WANDB_SOURCES:
        if source not in results:
            continue
        joined = []
        for row in results[source].rows:
            links = dict(row["links"])
            its_job = job_of_run.get(row["id"])
            if its_job is not None:
                links.setdefault("vertex_job", its_job["id"])
                if its_job["links"].get("queue_item"):
                    links.setdefault("queue_item", its_job["links"]["queue_item"])
            joined.append({**row, "links": links} if links != row["links"] else row)
        results[source].rows = joined  # type: ignore[assignment]
