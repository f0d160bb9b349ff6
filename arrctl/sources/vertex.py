"""Source `vertex`: Vertex AI custom jobs in every configured region, newest first.

Only `google.cloud.aiplatform_v1` is imported (the full `google.cloud.aiplatform` SDK costs
1.5 s of import); one client per region, as the real API is served from regional hosts.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from arrctl.model import Row, duration_between, epoch, iso_z, make_row
from arrctl.sources import Emitter, FetchContext

SOURCE = "vertex"
PAGE_SIZE = 100

STATUS = {
    "JOB_STATE_UNSPECIFIED": "UNKNOWN",
    "JOB_STATE_QUEUED": "QUEUED",
    "JOB_STATE_PENDING": "PENDING",
    "JOB_STATE_RUNNING": "RUNNING",
    "JOB_STATE_SUCCEEDED": "SUCCEEDED",
    "JOB_STATE_FAILED": "FAILED",
    # Cancelling is where a cancel ends: never count it as a live job (launch's fast path).
    "JOB_STATE_CANCELLING": "CANCELLED",
    "JOB_STATE_CANCELLED": "CANCELLED",
    "JOB_STATE_PAUSED": "PENDING",  # waiting to be resumed: not running, not finished
    "JOB_STATE_EXPIRED": "TIMEOUT",
    "JOB_STATE_UPDATING": "RUNNING",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "SUCCEEDED",
}
_LIVE = {"RUNNING"}


def _accelerator(machine_spec: Any) -> str | None:
    """`NVIDIA_TESLA_A100 x1`, or None for a CPU-only machine."""
    kind = getattr(machine_spec.accelerator_type, "name", "")
    if not kind or kind == "ACCELERATOR_TYPE_UNSPECIFIED":
        return None
    return f"{kind} x{machine_spec.accelerator_count or 1}"


def job_links(job: Any) -> dict[str, str]:
    """What the job is part of: W&B Launch labels it `wandb-run-id` (vertex_runner.py, WANDB_RUN_ID_KEY)
    and writes WANDB_RUN_ID and WANDB_LAUNCH_TRACE_ID (the run queue item) into its containers'
    env (_project_spec.py `get_env_vars_dict`). Only these names are read from the env: it also
    holds WANDB_API_KEY in plain text."""
    links: dict[str, str] = {}
    env: dict[str, str] = {}
    for pool in (job.job_spec.worker_pool_specs if job.job_spec else []):
        for var in pool.container_spec.env if pool.container_spec else []:
            if var.name in ("WANDB_RUN_ID", "WANDB_LAUNCH_TRACE_ID"):
                env.setdefault(var.name, var.value)
    run = (dict(job.labels) if job.labels else {}).get("wandb-run-id") or env.get("WANDB_RUN_ID")
    if run:
        links["wandb_run"] = run
    if env.get("WANDB_LAUNCH_TRACE_ID"):
        links["queue_item"] = env["WANDB_LAUNCH_TRACE_ID"]
    return links


def parse_custom_job(job: Any, now: _dt.datetime) -> Row:
    """One vertex row from an aiplatform_v1.CustomJob (pure)."""
    from arrctl.sanitize import one_line

    parts = job.name.split("/")
    project = parts[1] if len(parts) > 1 else ""
    region = parts[3] if len(parts) > 3 else None
    job_id = parts[-1]
    raw = getattr(job.state, "name", None) or str(job.state)
    status = STATUS.get(raw, "UNKNOWN")
    created, started, finished = iso_z(job.create_time), iso_z(job.start_time), iso_z(job.end_time)
    if status in _LIVE and finished is None:
        duration = duration_between(started, iso_z(now))
    else:
        duration = duration_between(started, finished)
    message = None
    if status != "SUCCEEDED" and job.error and job.error.message:
        message = one_line(job.error.message)
    pools = job.job_spec.worker_pool_specs if job.job_spec else []
    machine = pools[0].machine_spec if pools else None
    return make_row(
        SOURCE, job_id, status, raw_status=raw, region=region, name=job.display_name or None,
        created=created, started=started, finished=finished, duration_s=duration,
        message=message, links=job_links(job),
        url=(f"https://console.cloud.google.com/vertex-ai/locations/{region}/training/"
             f"{job_id}/cpu?project={project}"),
        extra={"machine_type": (machine.machine_type or None) if machine else None,
               "accelerator": _accelerator(machine) if machine else None,
               "display_name": job.display_name or None},
    )


def newest(rows: list[Row], limit: int) -> list[Row]:
    """The `limit` newest rows, newest first."""
    return sorted(rows, key=lambda r: (epoch(r["created"]) or 0.0, r["id"]), reverse=True)[:limit]


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """Custom jobs of every region at once; each region's rows sent as it answers."""
    from arrctl import clients
    from arrctl.sources.gcp_errors import failure_error, in_order

    emit = clients.LockedEmitter(emit)
    config = ctx.config
    regions = list(config.regions)
    limit = config.vertex_limit
    now = _dt.datetime.now(_dt.timezone.utc)
    clients.credentials(ctx)
    emit.plan(regions)

    def list_region(region: str) -> list[Row]:
        client = clients.vertex_job_client(ctx, region)
        emit.call("vertex")
        pager = client.list_custom_jobs(
            request={"parent": f"projects/{config.project}/locations/{region}", "page_size": PAGE_SIZE},
            **clients.call_kwargs(ctx))
        # Newest come first; a region never needs more than `limit` of them.
        jobs = clients.take_pages(pager, lambda: emit.call("vertex"), lambda n: n >= limit,
                                  "custom_jobs")
        return newest([parse_custom_job(j, now) for j in jobs], limit)

    rows: list[Row] = []
    failures: list[tuple[str, str]] = []
    for region, result, error in clients.fan_out(regions, list_region, max(1.0, ctx.deadline_s - 0.5)):
        if error is not None:
            failures.append((region, error))
            continue
        emit.rows(result or [], part=region)
        rows.extend(result or [])
    if len(failures) < len(regions):
        emit.rows(newest(rows, limit))
    if failures:
        raise failure_error(in_order(failures, regions), len(regions))
