"""`arrctl trace ID|URL`: the chain of one launch, followed in the workers and printed."""

from __future__ import annotations

import time
from typing import Any

import click

from arrctl.kinds import ExitStatus
from arrctl.output import Output, config_errors, signals_handled


def run_trace(app: Any, target: str, as_json: bool, deadline: float | None) -> int:
    """Follow the chain from `target`; exit 0 when it was followed, 1 when a hop could not be looked up."""
    from arrctl import render
    from arrctl import trace as tracing

    out = Output()
    with signals_handled() as receiver, config_errors(ExitStatus.USAGE):
        with app.session(deadline_s=deadline, receiver=receiver) as refresher:
            from arrctl.config import require_project

            require_project(refresher.config)
            try:  # the runner job's name (from the config) tells an execution name apart
                wanted = tracing.parse_target(target, refresher.config.runner_job)
            except tracing.BadTarget as exc:
                raise click.UsageError(str(exc)) from None
            chain, found = tracing.follow(refresher, wanted)
            start_timeout_s = refresher.config.vertex_start_timeout_s
    if as_json:
        out.bytes(b"".join(render.ndjson(record) for record in tracing.records(chain)))
    else:
        now = time.time()
        notes = tracing.disagreements(found, chain, now, start_timeout_s)
        for line in tracing.text_lines(chain, now, render.Style(app.color), notes):
            out.line(line)
    return ExitStatus.ERROR if chain.unknown else ExitStatus.OK
