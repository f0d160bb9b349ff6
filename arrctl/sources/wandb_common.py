"""What the two W&B sources share: a run node into a row, and the listing of runs.

`parse_run` is pure and works on a GraphQL `Run` node as W&B sends it (`config` and
`summaryMetrics` as JSON strings) or as `node_of` rebuilds it from a `wandb` Run (dicts).
`fetch_runs` is the thin I/O part, through the client of sources/wandb_client.py (made after the
fork, bounded, every failure one line).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Mapping
from urllib.parse import quote

from arrctl.links import launch_config_links
from arrctl.model import Row, duration_between, epoch, iso_z, make_row
from arrctl.sanitize import one_line
from arrctl.sources import Emitter, FetchContext, SourceError
from arrctl.sources.wandb_client import MESSAGE_CHARS, MalformedRun, wandb_client

DEFAULT_APP_URL = "https://wandb.ai"

# preempting: still executing while W&B winds it down. preempted: stopped by the platform, not
# by an error in the run, and it stays stopped unless requeued: CANCELLED, as Vertex does.
STATUS_BY_STATE: dict[str, str] = {
    "pending": "PENDING", "running": "RUNNING", "preempting": "RUNNING",
    "finished": "SUCCEEDED", "failed": "FAILED", "crashed": "FAILED",
    "killed": "CANCELLED", "preempted": "CANCELLED",
}
TERMINAL_STATES: tuple[str, ...] = ("finished", "failed", "crashed", "killed")  # SPEC's `completed`
ENDED_STATES = frozenset(TERMINAL_STATES) | {"preempted"}
ERROR_SUMMARY_KEYS: tuple[str, ...] = ("error", "exception", "error_message", "failure_reason")
# --- pure: node -> row -----------------------------------------------------------------------

def as_dict(value: Any) -> dict[str, Any]:
    """A JSON-string field (config, summaryMetrics) as a dict; {} when absent or unreadable."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (str, bytes, bytearray)) and value:
        try:
            parsed = json.loads(value, strict=False)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def normalise_status(state: str | None) -> str:
    """SPEC's status for a W&B run state (UNKNOWN for a word W&B may add later)."""
    return STATUS_BY_STATE.get((state or "").lower(), "UNKNOWN")


def root_error(text: str) -> str:
    """The line that names the error: a traceback's last line, else the first non-blank one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        return lines[-1]
    return lines[0]


def run_message(state: str | None, summary: Mapping[str, Any], heartbeat_at: str | None) -> str | None:
    """For a failed or crashed run, the best one-line reason W&B holds; None for other runs."""
    if normalise_status(state) != "FAILED":
        return None
    for key in ERROR_SUMMARY_KEYS:
        value = summary.get(key)
        if isinstance(value, str) and value.strip():
            return one_line(root_error(value), MESSAGE_CHARS)
    if state == "crashed":
        return f"run crashed: no heartbeat since {heartbeat_at}" if heartbeat_at else "run crashed"
    return "run failed (no error recorded in its summary)"


def run_url(entity: str, project: str, run_id: str, app_url: str = DEFAULT_APP_URL) -> str:
    """The run's page in the W&B app."""
    parts = (quote(entity, safe=""), quote(project, safe=""), "runs", quote(run_id, safe=""))
    return app_url.rstrip("/") + "/" + "/".join(parts)


def parse_run(node: Mapping[str, Any], now: float, *, source: str, entity: str, project: str,
              url: str | None = None) -> Row:
    """A row of `source` from one W&B run node; `now` (epoch s) dates running runs and ages."""
    run_id = node.get("name")
    if not isinstance(run_id, str) or not run_id:
        raise MalformedRun("a run without a name (its id)")
    raw = node.get("state")
    raw = raw.lower() if isinstance(raw, str) and raw else None
    status = normalise_status(raw)
    summary = as_dict(node.get("summaryMetrics"))
    links = launch_config_links(as_dict(node.get("config")))
    created = iso_z(node.get("createdAt"))
    heartbeat_at = iso_z(node.get("heartbeatAt"))

    finished = None
    if raw in ENDED_STATES:
        # the last heartbeat is when the run stopped talking; _runtime is the fallback, since it
        # counts only the time the process ran (a resumed run's createdAt is the first start)
        finished = heartbeat_at
        runtime = summary.get("_runtime")
        if finished is None and created and isinstance(runtime, (int, float)) and math.isfinite(runtime):
            finished = iso_z(epoch(created) + float(runtime))  # type: ignore[operator]
        duration = duration_between(created, finished)
    elif status == "PENDING" or created is None:
        duration = None
    else:
        duration = round(max(0.0, now - epoch(created)), 1)  # type: ignore[operator]

    beat = epoch(heartbeat_at)
    message = run_message(raw, summary, heartbeat_at)  # W&B's own words; a console log may say more
    user: Mapping[str, Any] = node["user"] if isinstance(node.get("user"), Mapping) else {}
    tags = node.get("tags")
    return make_row(
        source, run_id, status,
        raw_status=raw,
        name=node.get("displayName") or None,
        created=created,
        started=None if status == "PENDING" else created,
        finished=finished,
        duration_s=duration,
        message=message,
        url=url or run_url(entity, project, run_id),
        links=links,
        extra={
            "heartbeat_at": heartbeat_at,
            "heartbeat_age_s": None if beat is None else round(now - beat, 1),
            "user": user.get("username") or user.get("name"),
            "tags": [str(tag) for tag in tags] if isinstance(tags, list) else [],
            "group": node.get("group"),
            "job_type": node.get("jobType"),
            "step": _step(summary),
            "entity": entity,
            "project": project,
            **({"api_message": message} if status == "FAILED" else {}),
        },
    )


def _step(summary: Mapping[str, Any]) -> int | None:
    """The run's last logged step (`_step` in its summary, which wandb.log counts), or None."""
    step = summary.get("_step")
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def node_of(run: Any) -> dict[str, Any]:
    """The GraphQL node fields parse_run reads, from a `wandb.apis.public.Run`'s public attributes."""
    user = getattr(run, "user", None)
    return {
        "name": run.id, "displayName": run.name, "state": run.state,
        "summaryMetrics": run.summary_metrics,
        "createdAt": getattr(run, "created_at", None), "heartbeatAt": getattr(run, "heartbeat_at", None),
        "user": {"username": getattr(user, "username", None), "name": getattr(user, "name", None)},
        "tags": getattr(run, "tags", None), "group": getattr(run, "group", None),
        "jobType": getattr(run, "job_type", None),
        # only `_wandb` (W&B's own keys, in `rawconfig`): where a launched run says its queue item
        "config": {"_wandb": (getattr(run, "rawconfig", None) or {}).get("_wandb")},
    }


def fetch_runs(ctx: FetchContext, emit: Emitter, *, source: str, filters: dict[str, Any],
               limit: int, per_page: int, order: str = "-created_at", console_logs: bool = False) -> None:
    """Emit the newest `limit` runs matching `filters` as rows of `source` (one W&B query); with
    `console_logs`, the root errors of newly failed runs from their console logs (sources/wandb_logs.py)."""
    rows: list[Row] = []
    problem = None
    started = time.monotonic()
    with wandb_client(ctx, emit) as client:
        runs = client.api.runs(f"{client.entity}/{client.project}", filters=filters, order=order,
                               per_page=per_page, lazy=False)
        iterator = iter(runs)
        listed: dict[str, Any] = {}
        while len(rows) < limit:
            page_before = id(runs.last_response)
            try:
                run = next(iterator, None)
            except Exception:
                emit.call("wandb")  # the page request that failed
                raise
            if id(runs.last_response) != page_before:  # a page came over the wire
                emit.call("wandb")
            if run is None:
                break
            rows.append(parse_run(node_of(run), time.time(), source=source, entity=client.entity,
                                  project=client.project, url=run.url))
            listed[run.id] = run
        if console_logs:
            from arrctl.sources.wandb_logs import read_console_logs

            rows, problem = read_console_logs(ctx, emit, listed, rows, base_url=client.base_url,
                                              api_key=client.api_key, timeout_s=client.timeout_s,
                                              deadline_at=started + ctx.deadline_s - 0.5)
    emit.rows(rows)
    if problem:
        raise SourceError(problem)


__all__ = [
    "STATUS_BY_STATE", "TERMINAL_STATES", "as_dict", "fetch_runs",
    "normalise_status", "parse_run", "root_error", "run_message", "run_url",
]
