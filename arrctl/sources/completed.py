"""Source `completed`: the newest W&B runs in a terminal state (finished, failed, crashed, killed)."""

from __future__ import annotations

from arrctl.sources import Emitter, FetchContext
from arrctl.sources.wandb_common import TERMINAL_STATES, fetch_runs

SOURCE = "completed"
DEFAULT_LIMIT = 10


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """Emit the newest `[wandb] completed_limit` terminal runs, from one filtered query."""
    limit = max(1, int(getattr(ctx.config, "wandb_completed_limit", None) or DEFAULT_LIMIT))
    fetch_runs(ctx, emit, source=SOURCE, filters={"state": {"$in": list(TERMINAL_STATES)}},
               limit=limit, per_page=min(limit, 1000))
