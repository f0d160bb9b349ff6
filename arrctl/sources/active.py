"""Source `active`: the W&B runs in state running, newest first."""

from __future__ import annotations

from arrctl.sources import Emitter, FetchContext
from arrctl.sources.wandb_common import fetch_runs

SOURCE = "active"
PER_PAGE = 50
MAX_RUNS = 500  # ten pages: a bound on one refresh, far above any real number of live runs


def fetch(ctx: FetchContext, emit: Emitter) -> None:
    """Emit every running run of the configured entity/project."""
    fetch_runs(ctx, emit, source=SOURCE, filters={"state": "running"}, limit=MAX_RUNS, per_page=PER_PAGE)
