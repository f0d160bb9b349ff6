"""The command line: click declarations that parse the arguments and call each command's driver.

Each command's work lives in its own module (get: getting.py, watch: watch.py, check: checking.py,
explain: explain.py, launch: launching.py, trace: trace/command.py, logs: logs_cmd.py, doctor:
doctor.py); the global options become an App (app.py); output.py writes and exits.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from arrctl import __version__, completion
from arrctl.app import App
from arrctl.kinds import ExitStatus
from arrctl.options import (CheckCommand, Duration, Seconds, deadline_option, deadline_seconds, filter_options,
                            parse_sources)
from arrctl.output import StdoutClosed, StdoutFailed, fail, quiet_exit, say, use_color


HELP = """Monitor the ML training pipeline (Cloud Run runner, Cloud Build, Vertex AI, W&B) without ever hanging.

\b
Examples:
  arrctl --demo get                 one refresh of all five sources, against the built-in fake cloud
  arrctl get runner vertex --json   NDJSON rows of two sources, for jq
  arrctl watch                      print one line per change, every 30 s
  arrctl check                      one judged refresh for cron and monitoring (exit 0-3)
  arrctl explain vertex-ai-launcher-x7k2p   the root error of a runner execution
  arrctl logs -f 1428571428571428013        follow a Vertex AI job's log lines to its root error
  arrctl doctor                     check config, credentials, permissions and W&B, one line each
"""


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="TOML config file [default: $ARRCTL_CONFIG, else $XDG_CONFIG_HOME/arrctl/config.toml].")
@click.option("--state-dir", type=click.Path(),
              help="State directory [default: $ARRCTL_STATE_DIR, else $XDG_STATE_HOME/arrctl].")
@click.option("--demo", is_flag=True, help="Run against the embedded fake cloud: no config, credentials or network.")
@click.option("--color", "color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Colour the output: auto (a terminal, unless NO_COLOR is set or TERM=dumb), always (e.g. for "
                   "less -R), never.")
@click.option("--no-color", is_flag=True, help="Never colour the output: --color=never.")
@click.version_option(__version__, "--version", prog_name="arrctl")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, state_dir: str | None, demo: bool, color: str,
        no_color: bool) -> None:
    from arrctl.sanitize import add_known_secret

    if no_color and color == "always":
        raise click.UsageError("--no-color and --color=always contradict each other: give one")
    ctx.obj = App(config_path=config_path, state_dir=state_dir, demo=demo,
                  color=use_color("never" if no_color else color, os.environ, sys.stdout))
    add_known_secret(os.environ.get("WANDB_API_KEY"))  # also for explain --from-file, which reads no config
    grace = os.environ.get("ARRCTL_KILL_GRACE")
    if grace:
        import math

        try:
            ctx.obj.grace_s = float(grace)
        except ValueError:
            ctx.obj.grace_s = math.nan
        if not (math.isfinite(ctx.obj.grace_s) and 0 <= ctx.obj.grace_s <= 60):
            raise click.UsageError(f"ARRCTL_KILL_GRACE={grace!r}: expected a number of seconds from 0 to 60")


@cli.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...", shell_complete=completion.sources)
@click.option("--json", "as_json", is_flag=True, help="NDJSON: a row record per row, then a source record per source.")
@click.option("-o", "--output", "shape", type=click.Choice(["wide", "name", "json"]), default=None,
              help="wide: more columns (task counts, machine, user, tags, heartbeat, step, links, URL) and "
                   "absolute start times; name: ids only, one per line; json: as --json.")
@click.option("--no-headers", is_flag=True, help="Rows only: no titles, column headers or blank lines "
                                                 "(status lines of failed sources go to stderr).")
@filter_options
@deadline_option
@click.pass_obj
def get(app: App, sources: tuple[str, ...], as_json: bool, shape: str | None, no_headers: bool,
        flags: dict[str, Any], deadline: float | None) -> None:
    """One refresh of the named sources (all five by default), then exit.

    SOURCE is runner, builds, vertex, active or completed. Exit 0 when every source
    answered, 1 when any failed or timed out (everything else is still printed), 2 on a
    usage or configuration error.

    \b
    Filters (--status, --region, --since, --name, --user, --tag) choose the rows shown; each
    table says how many it hid. STARTED says how long ago; -o wide gives the time itself.

    \b
    Examples:
      arrctl get
      arrctl get runner vertex --deadline 10
      arrctl get --status failed,timeout --since 2h
      arrctl get vertex -o wide --region us-central1
      arrctl get completed --user alice --tag spot --name 'arr-coc-*'
      arrctl get runner --status failed -o name | xargs -n1 arrctl explain
      arrctl get --json | jq -c 'select(.type=="row" and .status=="FAILED")'
    """
    from arrctl.getting import run_get

    if shape == "json":
        as_json, shape = True, None
    elif shape is not None and as_json:
        raise click.UsageError(f"--json and -o {shape} contradict each other: give one")
    sys.exit(run_get(app, parse_sources(sources), flags, as_json=as_json, shape=shape, headers=not no_headers,
                     deadline=deadline))


@cli.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...", shell_complete=completion.sources)
@click.option("--json", "as_json", is_flag=True, help="NDJSON events: added, changed, removed, source, heartbeat.")
@click.option("--interval", type=Seconds(0.1, 86400), default=None, metavar="SECONDS",
              help="Seconds between refreshes [default: from config, 30].")
@click.option("--heartbeat", type=Seconds(0.1, 86400), default=None, metavar="SECONDS",
              help="Print a heartbeat line after this many seconds without output [default: from config, 60].")
@click.option("--cycles", type=click.IntRange(min=1), default=None, metavar="N", help="Stop after N refreshes (exit 0).")
@click.option("--bell", is_flag=True, help="Ring the terminal bell when a row newly fails or times out "
                                           "(only when stdout is a terminal).")
@filter_options
@deadline_option
@click.pass_obj
def watch(app: App, sources: tuple[str, ...], as_json: bool, interval: float | None,
          heartbeat: float | None, cycles: int | None, bell: bool, flags: dict[str, Any],
          deadline: float | None) -> None:
    """Refresh every --interval seconds and print only what changed, one flushed line per change.

    The first refresh prints every row as added. A heartbeat line appears whenever
    --heartbeat seconds pass without another line, so an SSH session never sits silent.
    Ctrl-C stops it within a second (exit 130; 143 on SIGTERM), with every worker gone.
    Filters (as for get) choose the rows watched: a change shows when the row matches before
    or after it, so --status running shows a run that fails as RUNNING -> FAILED.

    \b
    Examples:
      arrctl watch
      arrctl --demo watch --interval 2
      arrctl watch --status failed,timeout --bell
      arrctl watch active completed --user alice
      arrctl watch --json | jq -c 'select(.type=="changed")'
    """
    from arrctl.watch import run_watch

    sys.exit(run_watch(app, parse_sources(sources), flags, as_json=as_json, interval=interval, heartbeat=heartbeat,
                       cycles=cycles, bell=bell, deadline=deadline))


@cli.command(cls=CheckCommand)
@click.option("--format", "fmt", type=click.Choice(["nagios", "json", "prom"]), default="nagios", show_default=True,
              help="nagios: the Monitoring Plugins line; json: one object; prom: Prometheus text format.")
@click.option("--output", type=click.Path(dir_okay=False, allow_dash=True), default=None, metavar="PATH|-",
              help="Write the report here instead of stdout (- is stdout): a regular file is replaced atomically "
                   "(temp file + rename, e.g. for node_exporter's textfile directory), a symlink's target likewise; "
                   "a device or FIFO is written to directly.")
@filter_options
@deadline_option
@click.pass_obj
def check(app: App, fmt: str, output: str | None, flags: dict[str, Any], deadline: float | None) -> None:
    """One refresh, judged for cron and monitoring systems (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).

    CRITICAL: a runner execution that failed or timed out, a Vertex AI job or W&B run that
    failed since the previous check, with its root error; each failure is reported by one
    check only (on the first check of a state directory, failures that ended before [check]
    first_window_s are recorded as seen, not paged). WARNING: a source failed or timed out, a
    running W&B run's heartbeat is too old, a build is queued or pending (e.g. awaiting
    approval) too long, a build failed or timed out ([builds] failure_severity: warning,
    critical or ignore), or the systems of one launch disagree, each reported once: a W&B run
    crashed while its Vertex AI job runs (never paged as a failure), a job ended while its run
    says running, a job queued or pending longer than [vertex] start_timeout_s, a runner
    execution ended while a job it launched is still starting. UNKNOWN: configuration,
    credentials or state prevent a judgement, or the report could not be delivered. Filters (as
    for get) judge only the rows they let through; a failure they hide is not counted as
    reported, so a later check without the filter still reports it.

    \b
    Examples:
      */5 * * * * arrctl check > /tmp/arrctl.txt; [ $? -eq 2 ] && mail ... < /tmp/arrctl.txt
      arrctl check --format prom --output /var/lib/node_exporter/textfile/arrctl.prom
      arrctl check; curl -fsS "$PING_URL/$?"   # healthchecks-style ping with the exit code
      arrctl check --region europe-west4 --since 1d   # one team's region only
    """
    from arrctl.checking import run_check

    sys.exit(run_check(app, fmt, output, flags, deadline))


@cli.command()
@click.argument("item", metavar="[ID|URL]", required=False, shell_complete=completion.executions)
@click.option("--from-file", "from_file", type=click.File("rb"), default=None, metavar="PATH|-",
              help="Analyse log text from a file, or - for standard input, instead of fetching logs.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: verdict, message, category, rule, line, jobs, context.")
@deadline_option
@click.pass_obj
def explain(app: App, item: str | None, from_file: Any, as_json: bool, deadline: float | None) -> None:
    """The root cause of a failed item, from its own logs (or from log text on a file or stdin).

    ID|URL is a runner execution name (vertex-ai-launcher-x7k2p) or resource name; a Vertex AI
    job id or its console URL; a build id (UUID) or its console URL; a W&B run id,
    ENTITY/PROJECT/ID or run URL. arrctl finds what it is and where (every configured region
    at once), then prints the one-line error, its category, the rule that found it and the
    context lines around it (20 before, 80 after); for a successful execution, the success
    summary with the number of jobs it ran. When the logs cannot be read in full, the platform's
    own words stand in, with a note saying why. --from-file reads log text, or exported Cloud
    Logging entries (a JSON array, an entries.list answer or one entry per line), oldest first
    whatever their order. Exit 0 when the analysis ran, whatever the
    verdict; 1 when the item does not exist or nothing about it could be read; 2 on a usage error.

    \b
    Examples:
      arrctl explain vertex-ai-launcher-x7k2p
      arrctl explain 'https://console.cloud.google.com/vertex-ai/locations/us-central1/training/1428571428571428013/cpu?project=my-project'
      arrctl explain arr-demo/arr-coc-0-1/p2t6v9jx --json | jq -r .message
      gcloud logging read '...' --format='value(textPayload)' | arrctl explain --from-file -
      gcloud logging read 'resource.type="ml_job"' --format=json | arrctl explain --from-file -
    """
    from arrctl.explain import run_explain

    if (item is None) == (from_file is None):
        raise click.UsageError("give an ID|URL or --from-file PATH|- (one of the two)")
    sys.exit(run_explain(app, item, from_file, as_json, deadline))


@cli.command()
@click.option("--timeout", type=Seconds(1, 86400), default=120.0, show_default=True, metavar="SECONDS",
              help="Give up waiting after this long (exit 124).")
@click.option("--no-wait", is_flag=True, help="Start the execution, print its name and exit 0.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result object instead of text.")
@click.option("--poll", type=Seconds(0.2, 60), default=5.0, hidden=True, help="Seconds between polls.")
@click.pass_obj
def launch(app: App, timeout: float, no_wait: bool, as_json: bool, poll: float) -> None:
    """Start an execution of the runner job and wait for its outcome.

    Success as soon as this execution's Vertex AI job is QUEUED, PENDING, RUNNING or
    SUCCEEDED; failure as soon as that job FAILED, the execution failed, a fatal error appears
    in its logs, or the runner ended without launching anything (Runs: 0). The job is told
    apart from colleagues' by what the execution's logs say (its resource name, the W&B run id
    it is labelled with, the run queue item); by the time window only when nothing better
    exists, and the result says which. --timeout bounds the whole command, starting the job
    included. Exit 0 success, 1 failure (with the root error), 124 timeout. A progress line is
    printed at least every 5 s; Ctrl-C leaves the execution running.

    \b
    Examples:
      arrctl launch
      arrctl --demo launch --timeout 30
      arrctl launch --no-wait
    """
    from arrctl.launching import run_launch

    sys.exit(run_launch(app, timeout, no_wait=no_wait, as_json=as_json, poll=poll))


@cli.command()
@click.argument("target", metavar="ID|URL")
@click.option("--json", "as_json", is_flag=True, help="NDJSON: a hop record per hop, then one trace record.")
@deadline_option
@click.pass_obj
def trace(app: App, target: str, as_json: bool, deadline: float | None) -> None:
    """Follow one launch across the four systems: queue item -> runner execution -> Vertex AI job -> W&B run.

    ID|URL is any hop: a W&B Launch queue item id, a runner execution name, a Vertex AI job id
    or console URL, or a W&B run id, entity/project/id path or URL. Prints one hop per line
    with its status, age, root error and link, and how it was tied to the chain: the
    execution's logs, the job's label wandb-run-id, a config (the job's env, the run's
    config), or the time window only. A hop whose system failed or timed out is UNKNOWN, with
    the reason. Exit 0 when the chain was followed (whatever it shows), 1 when a hop could not
    be looked up, 2 on a usage error.

    \b
    Examples:
      arrctl trace p2t6v9jx
      arrctl trace https://wandb.ai/my-team/my-project/runs/p2t6v9jx --json | jq -c 'select(.type=="hop")'
      arrctl --demo trace vertex-ai-launcher-q7m2x
    """
    from arrctl.trace.command import run_trace

    sys.exit(run_trace(app, target, as_json, deadline))


@cli.command()
@click.argument("item", metavar="ID|URL")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing new lines until the item ends; then print its root error (exit 0 if it "
                   "succeeded, 1 if not).")
@click.option("--since", type=Duration(), default=None, metavar="DURATION",
              help="Only lines from the last DURATION (90s, 15m, 2h, 3d) [default: since the item was created].")
@click.option("--tail", type=click.IntRange(min=0), default=None, metavar="N",
              help="Only the last N lines of what is already there (new lines still all appear with -f).")
@deadline_option
@click.option("--poll", type=Seconds(0.2, 600), default=None, hidden=True, help="Seconds between reads.")
@click.pass_obj
def logs(app: App, item: str, follow: bool, since: float | None, tail: int | None, deadline: float | None,
         poll: float | None) -> None:
    """The log lines of one item: a runner execution, a Vertex AI job, a build or a W&B run.

    ID|URL is what `get` shows or links to: an execution name, a Vertex AI job id, a build id,
    a W&B run id or ENTITY/PROJECT/ID, their resource names, or a console or W&B URL. Lines pass
    through the same sanitiser as everything else (terminal escapes removed, secrets shown as
    [REDACTED]). A Vertex AI job's lines are prefixed with their replica ([workerpool0-0]),
    coloured per replica on a terminal. With -f new lines are read every 5 s (12 of the
    project's ~60 Cloud Logging reads a minute) until the item ends; then its root error goes
    to stderr and the exit status says how it ended. Ctrl-C stops at once (exit 130); a closed
    pipe (| head) ends quietly. Exit 0, or 1 when the item does not exist or its logs could not be
    read (with -f: when it failed, timed out or was cancelled), 2 on a usage error.

    \b
    Examples:
      arrctl logs vertex-ai-launcher-x7k2p
      arrctl logs -f 1428571428571428013            # a Vertex AI job: every replica
      arrctl logs --since 15m --tail 50 my-team/my-project/p6z3k9mh
      arrctl --demo logs -f vertex-ai-launcher-r1n7v
    """
    from arrctl.logs_cmd import POLL_S, run_logs

    sys.exit(run_logs(app, item, follow=follow, since_s=since, tail=tail, deadline=deadline,
                      poll_s=poll or POLL_S))


@cli.command()
@click.option("--deadline", type=deadline_seconds(), default=None, metavar="SECONDS",
              help="Seconds each check may take before it fails [default: 15].")
@click.pass_obj
def doctor(app: App, deadline: float | None) -> None:
    """Check what arrctl needs, one line per check; exit 0 when all pass, 1 otherwise.

    For the configured project and W&B entity: the config file, the Google credentials (which
    kind, which account), the project, one cheap call per source proving its permission (a
    refusal names the IAM role that grants it), Cloud Logging reads, the runner job in its
    [runner] region, the W&B host, key and project, the state directory, and how long ago each
    source last answered. Each check runs in its own worker under --deadline, so a hung API is
    one failed line, never a hang.

    \b
    Examples:
      arrctl doctor
      arrctl --demo doctor
      ARRCTL_SANDBOX_FAULTS=vertex:status:403 arrctl --demo doctor
    """
    from arrctl.doctor import run_doctor

    sys.exit(run_doctor(app, deadline))


@cli.group()
def sandbox() -> None:
    """The embedded fake cloud that --demo and the tests use."""


@sandbox.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port on 127.0.0.1 [default: a free one].")
@click.option("--scenario", default="default", show_default=True, shell_complete=completion.scenarios, help="A scenario shipped with arrctl (arrctl/sandbox/scenarios/), or a scenario directory.")
@click.option("--fault", "faults", multiple=True, metavar="SERVICE:KIND[:ARG]",
              help="Switch a fault on (repeatable): SERVICE run|vertex|build|logging|wandb|storage; KIND latency:S, hang, "
                   "status:CODE, malformed, trickle, pages:N. ARRCTL_SANDBOX_FAULTS adds more (comma separated).")
def sandbox_serve(port: int, scenario: str, faults: tuple[str, ...]) -> None:
    """Run the fake cloud in the foreground and print the exports that point arrctl at it.

    \b
    Example:
      arrctl sandbox serve --fault vertex:latency:2 --fault wandb:status:503
      arrctl sandbox serve > sandbox.env &  sleep 1; . ./sandbox.env; arrctl get
    """
    from arrctl.sandbox.server import serve

    from arrctl.sandbox import SandboxError

    try:  # serve() adds ARRCTL_SANDBOX_FAULTS itself
        code = serve(port=port, scenario=scenario, faults=list(faults), stdout=sys.stdout)
    except (ValueError, SandboxError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write to stdout: {exc.strerror or exc}", ExitStatus.ERROR)
    sys.exit(code)


def main() -> None:
    """Console entry point: a closed stdout ends quietly with exit 0; no tracebacks for users."""
    try:
        cli.main(prog_name="arrctl", standalone_mode=True)
    except SystemExit as done:
        if done.code in (ExitStatus.SIGINT, ExitStatus.SIGTERM):
            _stop_now(int(done.code))  # type: ignore[arg-type]
        raise
    except (StdoutClosed, BrokenPipeError):
        quiet_exit()
    except StdoutFailed as exc:
        say(f"arrctl: error: {exc}")
        sys.exit(ExitStatus.ERROR)
    except KeyboardInterrupt:
        _stop_now(ExitStatus.SIGINT)
    except Exception as exc:  # noqa: BLE001 — a user sees one line; developers set ARRCTL_DEBUG
        if os.environ.get("ARRCTL_DEBUG"):
            raise
        say(f"arrctl: internal error: {type(exc).__name__}: {exc} (set ARRCTL_DEBUG=1 for details)")
        sys.exit(ExitStatus.SOFTWARE)


def _stop_now(code: int) -> None:
    """End a run a signal stopped, once its workers are gone and its files closed (the `with`
    blocks have unwound): the exit handlers run and the streams are flushed, but the interpreter's
    teardown of everything the libraries loaded (0.65 s measured here, of SPEC's 1 s) is skipped."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            pass
    os._exit(code)


