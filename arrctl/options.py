"""The command line's parameter types and the options several commands share (click).

What a value must be is checked here, at parse time, with a one-line usage error naming the
flag: a finite number of seconds within bounds, a duration (90s, 2h, 1h30m), a list of sources.
"""

from __future__ import annotations

from typing import Any

import click

from arrctl import completion
from arrctl.kinds import CheckState
from arrctl.model import SOURCES


class Seconds(click.ParamType):
    """A finite number of seconds within bounds (click's FloatRange lets nan through)."""

    name = "seconds"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        import math

        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or not self.low <= seconds <= self.high:
            self.fail(f"{value!r} is not between {self.low:g} and {self.high:g} seconds", param, ctx)
        return seconds


def parse_sources(values: tuple[str, ...]) -> list[str]:
    """SOURCE arguments, validated, in canonical order; all five when none is given."""
    chosen: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name not in SOURCES:
                raise click.UsageError(f"unknown source {name!r} (expected one or more of: {', '.join(SOURCES)})")
            chosen.append(name)
    return [s for s in SOURCES if s in chosen] if chosen else list(SOURCES)


class Duration(click.ParamType):
    """A duration such as 90s, 15m, 2h, 3d or 1h30m, in seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        from arrctl.logs_cmd import parse_duration

        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def deadline_seconds() -> Seconds:
    """--deadline's type: the bounds of a source's deadline, as in [deadlines]."""
    from arrctl.config import MAX_DEADLINE_S, MIN_DEADLINE_S  # the bounds of [deadlines] too

    return Seconds(MIN_DEADLINE_S, MAX_DEADLINE_S)


FILTER_FLAGS = ("status", "region", "since", "name", "user", "tag")


def filter_options(command: Any) -> Any:
    """--status, --region, --since, --name, --user, --tag (arrctl.filters), given to the command as `flags`."""
    import functools

    @functools.wraps(command)
    def with_flags(*args: Any, **kwargs: Any) -> Any:
        return command(*args, flags={k: kwargs.pop(k) for k in FILTER_FLAGS}, **kwargs)

    options = [
        click.option("--status", multiple=True, metavar="STATUS[,STATUS]", shell_complete=completion.statuses,
                     help="Only rows with one of these statuses: queued, pending, running, succeeded, failed, "
                          "cancelled, timeout, unknown (any case; repeatable)."),
        click.option("--region", multiple=True, metavar="REGION[,REGION]",
                     help="Only rows of these regions (W&B runs have none; builds say global)."),
        click.option("--since", metavar="DURATION", help="Only rows created or finished within DURATION: 90s, 30m, 2h, 3d, 1h30m."),
        click.option("--name", multiple=True, metavar="GLOB", shell_complete=completion.names,
                     help="Only rows whose id or name matches the shell glob (case-sensitive; repeatable)."),
        click.option("--user", multiple=True, metavar="USER[,USER]", help="Only W&B runs of these users."),
        click.option("--tag", multiple=True, metavar="TAG[,TAG]", help="Only W&B runs with one of these tags."),
    ]
    for option in reversed(options):
        with_flags = option(with_flags)
    return with_flags


deadline_option = click.option(
    "--deadline", type=deadline_seconds(), default=None, metavar="SECONDS",
    help="Seconds each source's worker may take before it is killed [default: from config, 30].")


class CheckUsageError(click.UsageError):
    """A usage error of `check`: exit 3 (UNKNOWN), as the Monitoring Plugins convention says."""

    exit_code = CheckState.UNKNOWN


class CheckCommand(click.Command):
    """`check` speaks the Monitoring Plugins convention even for usage errors: exit 3, UNKNOWN."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise CheckUsageError(exc.message, exc.ctx) from exc
