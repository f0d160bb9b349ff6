"""Source `completed`: the newest W&B runs in a terminal state (finished, failed, crashed, killed)."""

from __future__ import annotations

from arrctl.sources import Emitter, FetchContext
from arrctl.sources.wandb_common import TERMINAL_STATES, fetch_runs

SOURCE = "completed"
DEFAULT_LIMIT = 10


# Newest by their last heartbeat, i.e. by when they ended: a run that ran for two days and has
# just failed is among the newest, though it was created before runs that finished long ago.
# wandb's public API passes `order` through to the Runs query and documents `heartbeat_at` as
# a valid order (wandb/apis/public/runs.py, class Runs: "Order can be `created_at`,
# `heartbeat_at`, `config.*.value`, or `summary_metrics.*`"; "-" for descending).
ORDER = "-heartbeat_at"


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """Emit the `[wandb] completed_limit` terminal runs that ended last, from one filtered query; the
    runs newly failed or crashed get their root error from their console logs (sources/wandb_logs.py)."""
    limit = max(1, int(getattr(ctx.config, "wandb_completed_limit", None) or DEFAULT_LIMIT))
    fetch_runs(ctx, emit, source=SOURCE, filters={"state": {"$in": list(TERMINAL_STATES)}},
               limit=limit, per_page=min(limit, 1000), order=ORDER,
               console_logs=True)
