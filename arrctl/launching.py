"""`arrctl launch`: start an execution of the runner job, then poll until its outcome is known.

The judgement is arrctl/launch.py's (pure: LaunchWaiter fed observations); this module starts the
execution in a worker, polls the Vertex AI jobs and the execution (with its logs) on their own
rhythms through the refresher, prints progress at least every 5 s, and prints the result.
"""

from __future__ import annotations

import time
from typing import Any

from arrctl.kinds import ExitStatus, SourceState
from arrctl.output import Output, config_errors, fail, say, signals_handled


def run_launch(app: Any, timeout: float, *, no_wait: bool, as_json: bool, poll: float) -> int:
    """The launch command; its exit status (0 success, 1 failure, 124 timeout)."""
    from arrctl.launch import LaunchWaiter, Outcome
    from arrctl.render import ndjson
    from arrctl.sources.launcher import start_execution

    out = Output()
    execution = None
    started = time.monotonic()
    ends = started + timeout  # the whole command, the start of the job included (issue 12)
    outcome: Outcome | None = None
    try:
        with signals_handled() as receiver, config_errors(ExitStatus.USAGE):
            with app.session(receiver=receiver) as refresher:
                from arrctl.config import require_project

                config = refresher.config
                require_project(config)
                region = config.job_region()
                began = time.time()
                start_s = max(0.5, min(30.0, ends - time.monotonic()))
                result = refresher.run_one("launch", start_execution, {"region": region}, deadline=start_s)
                if result.state == SourceState.TIMEOUT:  # never start twice: the first may yet have been accepted
                    outcome = Outcome("timeout", "start", f"Cloud Run did not answer the start of {config.runner_job} "
                                      f"in {region} within {start_s:.0f}s; it may have started: see `arrctl get runner`",
                                      "")
                elif result.state != SourceState.OK or not result.results:
                    fail(result.error or "the runner job did not start", ExitStatus.ERROR)
                else:
                    execution, full_name = result.results[0]["execution"], result.results[0]["name"]
                    if no_wait:
                        out.bytes(ndjson({"result": "started", "execution": execution})) if as_json \
                            else out.line(execution)
                        return ExitStatus.OK
                    say(f"arrctl: started {execution} in {region}; waiting up to {timeout:g}s "
                        "for its Vertex AI job")
                    waiter = LaunchWaiter(execution, began, timeout, ends_at=time.time() + (ends - time.monotonic()))
                    outcome = wait_for_launch(refresher, waiter, execution, full_name, ends, poll)
    except SystemExit as exiting:
        if exiting.code in (ExitStatus.SIGINT, ExitStatus.SIGTERM) and execution:
            say(f"arrctl: stopped waiting; execution {execution} is still running "
                f"(see `arrctl explain {execution}`)")
        raise
    assert outcome is not None
    if as_json:
        out.bytes(ndjson(outcome.to_dict(time.monotonic() - started)))
    else:
        for line in outcome_lines(outcome, execution):
            out.line(line)
    return outcome.exit_code


def outcome_lines(outcome: Any, execution: str | None) -> list[str]:
    """The text result of a launch (pure): the verdict and its words, then what names the launch."""
    from arrctl.launch import MATCH_WORDS
    from arrctl.render import clean

    word = {"success": "launched", "failure": "FAILED", "timeout": "TIMEOUT"}[outcome.result]
    lines = [f"{word}: {clean(outcome.message)}"]
    if outcome.job is not None and outcome.job.get("url"):
        lines.append(f"  {outcome.job['url']}")
    names = outcome.names()
    if names["wandb_run"]:
        lines.append(f"  W&B run: {clean(names['wandb_run'])} (the job's label wandb-run-id; "
                     f"arrctl trace {clean(names['wandb_run'])} follows it)")
    if names["queue_item"]:
        lines.append(f"  queue item: {clean(names['queue_item'])}")
    if outcome.match:
        lines.append(f"  matched by {MATCH_WORDS[outcome.match]}")
    if execution:
        lines.append(f"  execution: {execution}")
    return lines


def wait_for_launch(refresher: Any, waiter: Any, execution: str, full_name: str, ends: float, poll: float) -> Any:
    """Poll the Vertex AI jobs and the execution (with its logs), each on its own rhythm, until an outcome.

    Each source's result is taken the moment it arrives, so a hung Vertex AI API never holds
    back what the execution says, and the progress line shows the latest of each.
    """
    from arrctl.launch import Evidence
    from arrctl.sources.launcher import watch_execution
    from arrctl.sources.vertex import list_jobs as vertex_fetch  # no log reads while polling

    last_progress = time.monotonic()

    def progress() -> None:
        """A progress line at least every 5 s, even while a poll waits on a slow API."""
        nonlocal last_progress
        if time.monotonic() - last_progress >= 4.5:
            say(waiter.progress(time.time()))
            last_progress = time.monotonic()

    def on_result(name: str, result: Any) -> bool:
        if name == "vertex":
            if result.state == SourceState.OK or result.rows:
                waiter.on_vertex(result.rows)
            if result.state != SourceState.OK:
                waiter.seen["vertex"] = f"Vertex AI {result.state}: {result.error}"
        else:
            for fact in result.results:  # what the logs say first: a success with Runs: 0 needs it
                read = fact.get("logs") == "read"
                waiter.on_logs(Evidence.from_dict(fact.get("evidence")) if read else None)
                waiter.on_fatal(fact.get("fatal"), fact.get("rule"))
            waiter.on_execution(result.rows[0] if result.rows else None)
        progress()
        return waiter.outcome is not None or waiter.on_clock(time.time()) is not None

    def tick() -> bool:
        progress()
        return waiter.on_clock(time.time()) is not None

    refresher.poll({"vertex": (vertex_fetch, {}),
                    "execution": (watch_execution, {"execution": execution, "execution_name": full_name})},
                   deadline=lambda: max(1.0, min(15.0, ends - time.monotonic() + 0.5)), interval_s=poll,
                   until=ends, on_result=on_result, tick=tick)
    return waiter.outcome or waiter.on_clock(max(time.time(), waiter.ends_at))
