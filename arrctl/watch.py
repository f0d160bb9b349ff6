"""The watch loop: refresh, diff, print what changed, heartbeat when quiet, sleep until next time."""

from __future__ import annotations

import time
from typing import Any, Callable

from arrctl import filters, render
from arrctl.diff import Differ
from arrctl.refresh import Refresher
from arrctl.signals import SignalReceiver

# Imported once before the first fork, so every worker starts with them loaded (issue: cost).
PRELOAD = (
    "google.cloud.run_v2", "google.cloud.aiplatform_v1", "google.cloud.devtools.cloudbuild_v1",
    "google.cloud.logging", "wandb.apis.public",
)


def preload(sources: list[str]) -> None:
    """Import the client libraries and source modules now (no clients created: fork-safe)."""
    import importlib

    for name in [*PRELOAD, *(f"arrctl.sources.{s}" for s in sources)]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 — the worker will report a real import failure itself
            pass


BELL = b"\a"
FAILING = ("FAILED", "TIMEOUT")


def is_new_failure(event: dict[str, Any]) -> bool:
    """An event that shows a row failing or timing out now (not one that was already failed)."""
    if event["type"] == "added":
        return event["row"]["status"] in FAILING
    if event["type"] == "changed" and "status" in event["changes"]:
        old, new = event["changes"]["status"]
        return new in FAILING and old not in FAILING
    return False


def watch_loop(refresher: Refresher, sources: list[str], out: Any, receiver: SignalReceiver, *,
               as_json: bool, color: bool, interval: float, heartbeat: float, cycles: int | None,
               clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
               do_preload: bool = True, width: Callable[[], int | None] | None = None,
               select: filters.RowFilter = filters.RowFilter(), bell: bool = False) -> int:
    """Run until `cycles` refreshes are done (or forever); return the number of refreshes.

    `select`: the rows watched (the differ sees them all; the events shown are those of
    `filters.select_events`). `bell`: ring the terminal bell after a refresh that shows a new
    failure (the CLI asks for it only when stdout is a terminal).

    `width` gives the terminal's columns now (None in a pipe); it is asked for every line, so a
    resized terminal (SIGWINCH) gets lines that fit from the next line on. By default `out.columns`.
    """
    if do_preload:
        with receiver.interruptible():  # seconds of imports: a signal must not wait for them
            preload(sources)
    style = render.Style(color)
    columns = width if width is not None else getattr(out, "columns", lambda: None)
    differ = Differ()
    last_output = clock()
    cycle = 0
    results: dict[str, Any] = {}

    def emit(event: dict[str, Any]) -> None:
        nonlocal last_output
        if as_json:
            out.bytes(render.ndjson(event))
        else:
            out.line(render.event_line(event, wall(), style, width=columns()))
        last_output = clock()

    def beat_if_due() -> None:
        """A heartbeat when nothing was printed for `heartbeat` s, even in the middle of a refresh."""
        if clock() >= last_output + heartbeat:
            emit(render.heartbeat_event(render.now_iso(wall()), max(cycle - 1, 0), results))

    while True:
        cycle += 1
        started = clock()
        beat_if_due()
        everything = refresher.refresh(sources, tick=beat_if_due)
        ts = render.now_iso(wall())
        shown = filters.select_events(differ.update(everything, ts), select, wall())
        results = filters.apply(everything, select, wall())  # what heartbeats count
        for event in shown:
            emit(event)
        if bell and cycle > 1 and any(is_new_failure(e) for e in shown):
            out.bytes(BELL)
        if cycles is not None and cycle >= cycles:
            return cycle
        next_refresh = started + interval
        while True:
            now = clock()
            if now >= next_refresh:
                break
            due = last_output + heartbeat
            if now >= due:
                emit(render.heartbeat_event(render.now_iso(wall()), cycle, results))
                continue
            receiver.wait(min(next_refresh, due) - now)


def run_watch(app: Any, chosen: list[str], flags: dict[str, Any], *, as_json: bool, interval: float | None,
              heartbeat: float | None, cycles: int | None, bell: bool, deadline: float | None) -> int:
    """The watch command: the loop above in one session, until --cycles, a signal or a closed stdout."""
    from arrctl.kinds import ExitStatus
    from arrctl.output import Output, config_errors, signals_handled

    out = Output()
    with signals_handled() as receiver, config_errors(ExitStatus.USAGE):
        select = filters.parse_filter(**flags)
        with app.session(deadline_s=deadline, receiver=receiver) as refresher:
            config = refresher.config
            watch_loop(refresher, chosen, out, receiver, as_json=as_json, color=app.color,
                       interval=interval or config.watch_interval,
                       heartbeat=heartbeat or config.watch_heartbeat, cycles=cycles, select=select,
                       bell=bell and out.isatty())
    return ExitStatus.OK
