"""The command line: thin click commands over the refresher, the renderer and the store."""

from __future__ import annotations

import errno
import os
import sys
import time
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NoReturn

import click

from arrctl import __version__, completion
from arrctl.model import SOURCES

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


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


class StdoutClosed(Exception):
    """The reader of stdout went away (`| head -3`): end quietly, exit 0."""


class StdoutFailed(Exception):
    """stdout cannot be written (a full disk, an I/O error): a one-line error, exit 1."""


class Output:
    """Data to stdout, one flushed line at a time; a closed stdout ends the program quietly."""

    def __init__(self) -> None:
        if sys.stdout is None:  # started with stdout closed (`>&-`): nobody is reading
            raise StdoutClosed()
        self.stream = sys.stdout.buffer

    def columns(self) -> int | None:
        """The terminal's width now (read at every call: it follows a resize), or None in a pipe."""
        try:
            fd = self.stream.fileno()
            if not os.isatty(fd):
                return None
            return os.get_terminal_size(fd).columns or None
        except (AttributeError, OSError, ValueError):
            return None

    def isatty(self) -> bool:
        """Whether stdout is a terminal (the bell rings only there)."""
        try:
            return os.isatty(self.stream.fileno())
        except (AttributeError, OSError, ValueError):
            return False

    def line(self, text: str) -> None:
        """Write one text line and flush it."""
        self.bytes(text.encode("utf-8", "replace") + b"\n")

    def bytes(self, data: bytes) -> None:
        """Write raw bytes (an NDJSON line) and flush; a known secret never gets through."""
        from arrctl.sanitize import mask_known_bytes

        data = mask_known_bytes(data)
        try:
            self.stream.write(data)
            self.stream.flush()
        except BrokenPipeError:
            raise StdoutClosed() from None
        except OSError as exc:
            raise StdoutFailed(f"cannot write to stdout: {exc.strerror or exc}") from None


@dataclass
class App:
    """What the global options decided; commands build the rest lazily (imports cost)."""

    config_path: Path | None
    state_dir: str | None
    demo: bool
    color: bool
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    grace_s: float = 0.5

    def warn(self, message: str) -> None:
        """A one-line diagnostic on stderr."""
        say(f"arrctl: warning: {message}")

    def load_config(self) -> Any:
        """The configuration (demo, file + environment); ConfigError on a bad one."""
        from arrctl.config import default_config_path, demo_config, load_config

        from arrctl.sanitize import add_known_secret

        if self.demo:
            config = demo_config(self.env)
        else:
            explicit = self.config_path is not None or bool(self.env.get("ARRCTL_CONFIG"))
            path = self.config_path or default_config_path(self.env)
            config = load_config(path, self.env, explicit=explicit)
            if config.regions_defaulted:  # once per command: the config is loaded once
                where = str(path) if path.exists() else f"no config file ({path})"
                self.warn(f"{where}: no `regions` key, so only {', '.join(config.regions)} is watched "
                          '(set e.g. regions = ["us-central1", "europe-west2"])')
        add_known_secret(config.wandb_api_key)  # masked wherever it would show, in any output
        return config

    def state_path(self) -> Path:
        """The state directory (a demo/ folder inside it for --demo); ConfigError for an empty --state-dir."""
        from arrctl.config import ConfigError, default_state_dir

        if self.state_dir == "":  # Path("") would silently be the current directory
            raise ConfigError("--state-dir: expected a directory path, got an empty string")
        base = Path(self.state_dir) if self.state_dir is not None else default_state_dir(self.env)
        return base / "demo" if self.demo else base

    @contextmanager
    def session(self, *, deadline_s: float | None = None, receiver: Any = None) -> Iterator[Any]:
        """Config, store, endpoints (and the sandbox for --demo) for one command's lifetime."""
        from arrctl.refresh import Endpoints, Refresher, memory_scope
        from arrctl.store import Store

        with ExitStack() as stack:
            # Reading the config (a FIFO blocks until a writer comes), starting the sandbox and
            # waiting for another process's lock on the store block outside any loop: a signal
            # there ends the command at once (SPEC: within 1 s, 130/143).
            with receiver.interruptible() if receiver is not None else nullcontext():
                config = self.load_config()
                if self.demo:
                    from arrctl.sandbox import Sandbox

                    from arrctl.config import ConfigError

                    scenario = self.env.get("ARRCTL_SANDBOX_SCENARIO", "default")
                    try:  # the sandbox reads ARRCTL_SANDBOX_FAULTS itself
                        sandbox = stack.enter_context(Sandbox(scenario=scenario, environ=self.env))
                    except ValueError as exc:  # a bad ARRCTL_SANDBOX_FAULTS or ARRCTL_SANDBOX_SCENARIO
                        raise ConfigError(f"--demo: ARRCTL_SANDBOX_FAULTS/ARRCTL_SANDBOX_SCENARIO: {exc}") from None
                    except RuntimeError as exc:
                        raise ConfigError(f"--demo: the embedded fake cloud did not start: {exc}") from None
                    endpoints = Endpoints(gcp=sandbox.gcp_endpoint, wandb=sandbox.wandb_base_url,
                                          memory=f"demo:{scenario}")
                else:
                    endpoints = Endpoints(gcp=self.env.get("ARRCTL_GCP_ENDPOINT") or None,
                                          wandb=self.env.get("WANDB_BASE_URL") or None)
                # later waits on the store's lock (each refresh's save) look for a recorded signal
                store = Store(self.state_path(), warn=self.warn, scope=memory_scope(config, endpoints),
                              interrupted=receiver.check if receiver is not None else None)
                stack.callback(store.close)
                try:
                    store.prune(config.retention_days)
                except Exception as exc:  # noqa: BLE001 — pruning is housekeeping, never fatal
                    self.warn(f"could not prune state: {exc}")
            yield Refresher(config, store, endpoints, grace_s=self.grace_s, receiver=receiver,
                            deadline_s=deadline_s, warn=self.warn)


def say(message: str) -> None:
    """A line on stderr, known secrets masked."""
    from arrctl.sanitize import mask_known

    click.echo(mask_known(message), err=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error and exit with `code`."""
    say(f"arrctl: error: {message}")
    sys.exit(code)


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


def use_color(choice: str, env: Any, stream: Any) -> bool:
    """--color: `always` and `never` as said; `auto` colours a TTY whose TERM is not dumb, unless NO_COLOR."""
    if choice != "auto":
        return choice == "always"  # no-color.org: an explicit option beats NO_COLOR
    # no-color.org: NO_COLOR counts when set to a non-empty value; TERM=dumb has no escape sequences
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


@contextmanager
def signals_handled() -> Iterator[Any]:
    """Record SIGINT/SIGTERM for the main loop; exit 130/143 quietly when one arrives."""
    from arrctl.signals import Interrupted, SignalReceiver

    receiver = SignalReceiver().install()
    try:
        yield receiver
    except Interrupted as stop:
        receiver.uninstall()
        sys.exit(stop.exit_code)
    finally:
        receiver.uninstall()


@contextmanager
def config_errors(code: int) -> Iterator[None]:
    """Turn a configuration error into its one-line message and exit code."""
    from arrctl.config import ConfigError

    try:
        yield
    except ConfigError as exc:
        fail(str(exc), code)


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


def _deadline_seconds() -> "Seconds":
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


def parse_filter(flags: dict[str, Any]) -> Any:
    """The filter of the flags (FilterError, a ConfigError, for a bad value: exit 2, UNKNOWN for check)."""
    from arrctl.filters import parse_filter as parse

    return parse(**flags)


deadline_option = click.option(
    "--deadline", type=_deadline_seconds(), default=None, metavar="SECONDS",
    help="Seconds each source's worker may take before it is killed [default: from config, 30].")


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
    from arrctl import filters, render

    if shape == "json":
        as_json, shape = True, None
    elif shape is not None and as_json:
        raise click.UsageError(f"--json and -o {shape} contradict each other: give one")
    chosen = parse_sources(sources)
    out = Output()
    with signals_handled() as receiver, config_errors(EXIT_USAGE):
        select = parse_filter(flags)
        with app.session(deadline_s=deadline, receiver=receiver) as refresher:
            results = filters.apply(refresher.refresh(chosen), select, time.time())
    if as_json:
        out.bytes(b"".join(render.ndjson_records(results)))
    else:
        lines, notes = render.get_text(results, time.time(), render.Style(app.color), shape=shape,
                                       headers=not no_headers, width=out.columns())
        for line in lines:
            out.line(line)
        for note in notes:
            say(note)
    sys.exit(EXIT_OK if all(r.state == "ok" for r in results.values()) else EXIT_FAIL)


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
    from arrctl.watch import watch_loop

    chosen = parse_sources(sources)
    out = Output()
    with signals_handled() as receiver, config_errors(EXIT_USAGE):
        select = parse_filter(flags)
        with app.session(deadline_s=deadline, receiver=receiver) as refresher:
            config = refresher.config
            watch_loop(refresher, chosen, out, receiver, as_json=as_json, color=app.color,
                       interval=interval or config.watch_interval,
                       heartbeat=heartbeat or config.watch_heartbeat, cycles=cycles, select=select,
                       bell=bell and out.isatty())
    sys.exit(EXIT_OK)


CHECK_CONSUMER = "check"  # one list of reported failures per state directory


class CheckUsageError(click.UsageError):
    """A usage error of `check`: exit 3 (UNKNOWN), as the Monitoring Plugins convention says."""

    exit_code = 3


class CheckCommand(click.Command):
    """`check` speaks the Monitoring Plugins convention even for usage errors: exit 3, UNKNOWN."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise CheckUsageError(exc.message, exc.ctx) from exc


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
    from arrctl import filters, health
    from arrctl.config import ConfigError
    from arrctl.model import SOURCES

    target = None if output in (None, "-") else Path(output)

    def deliver(verdict: Any) -> None:
        deliver_check(verdict, fmt, target, receiver)

    with signals_handled() as receiver:
        try:
            if target is None and sys.stdout is None:  # `>&-`: judge nothing, claim nothing
                raise DeliveryFailed("cannot write to stdout: it is closed")
            try:
                select = parse_filter(flags)
                with app.session(deadline_s=deadline, receiver=receiver) as refresher:
                    # memory sees every row; the judgement (and what counts as reported) only those shown
                    results = filters.apply(refresher.refresh(list(SOURCES)), select, time.time())
                    verdict = report_check(refresher.store, results, refresher.config, deliver, warn=app.warn)
            except ConfigError as exc:
                verdict = health.unknown(str(exc))
                deliver(verdict)
        except DeliveryFailed as exc:
            fail(str(exc), 3)
    sys.exit(verdict.code)


class DeliveryFailed(Exception):
    """The check's report could not be written: UNKNOWN (exit 3), and nothing counts as reported."""


def report_check(store: Any, results: dict[str, Any], config: Any, deliver: Any, *,
                 warn: Any = lambda m: None, now: float | None = None) -> Any:
    """Claim the new failures under the store's write lock, judge, deliver; give the claim back if the
    report does not go out (SPEC: a failure is reported by one check only, and a lost report loses no page)."""
    from arrctl import disagree, health

    now = time.time() if now is None else now
    found = disagree.find(results, now, config.vertex_start_timeout_s)
    misfires = {d.misfire for d in found if d.misfire}  # a crash whose job still runs: never paged
    claim = told = None
    if store.persistent:
        try:
            # a filtered source is not complete: what a filter hid must not go into a first check's baseline
            ends = health.failure_ends(results, config.builds_failure_severity)
            claim = store.claim({k: v for k, v in ends.items() if k not in misfires}, CHECK_CONSUMER,
                                first_window_s=config.check_first_window_s,
                                complete=[s for s, r in results.items() if r.state == "ok" and not r.hidden])
            # each disagreement once, like a failure; the misfired crash is recorded as told with it
            told = store.claim(dict.fromkeys([d.key for d in found] + sorted(misfires)), CHECK_CONSUMER)
        except Exception as exc:  # noqa: BLE001 — judged as UNKNOWN below
            warn(f"could not record reported failures: {exc}")
            claim = None
    limits = health.Thresholds(config.wandb_heartbeat_warn_s, config.builds_queued_warn_s,
                               config.builds_failure_severity)
    new = claim.new if claim is not None else set(health.failure_keys(results, config.builds_failure_severity)) - misfires
    fresh = [d for d in found if told is None or d.key in told.new]
    verdict = health.judge(results, new, now, limits,
                           persistent=claim is not None, skipped=len(claim.baseline) if claim else 0,
                           first_window_s=config.check_first_window_s, disagreements=disagree.problems(fresh))
    try:
        deliver(verdict)
    except BaseException:  # undelivered (a full disk, a closed pipe, Ctrl-C): the next check reports them
        for taken in (claim, told):
            if taken is not None:
                try:
                    store.release(taken, CHECK_CONSUMER)
                except Exception as exc:  # noqa: BLE001
                    warn(f"could not give back the failures this check did not report: {exc}")
        raise
    return verdict


def deliver_check(verdict: Any, fmt: str, output: Path | None, receiver: Any = None) -> None:
    """Write the check's report to stdout or `--output`; DeliveryFailed when it cannot be written."""
    from arrctl import health

    if fmt == "nagios":
        text = health.nagios(verdict) + "\n"
    elif fmt == "json":
        from arrctl.render import ndjson

        text = ndjson(health.as_json(verdict)).decode()
    else:
        text = health.prometheus(verdict, time.time())
    if output is not None:
        write_report(output, text.encode(), receiver)
        return
    try:
        Output().bytes(text.encode())
    except StdoutFailed as exc:
        raise DeliveryFailed(str(exc)) from None
    except StdoutClosed:
        _stdout_to_devnull()  # the interpreter's last flush of stdout must not complain
        raise DeliveryFailed("cannot write to stdout: its reader is gone") from None


REPORT_WAIT_S = 30.0  # how long a FIFO (or a blocked device) may keep the report waiting for a reader


def write_report(path: Path, data: bytes, receiver: Any = None, wait_s: float = REPORT_WAIT_S) -> None:
    """Write the report to `path` the way its kind of file needs (DeliveryFailed when it cannot).

    A regular file, or a path that does not exist: a temporary file in the same directory, then a
    rename, so readers never see half a report (and no temporary file stays behind on failure). A
    symlink is followed: its target is what gets replaced. A device, a FIFO or another special file
    is opened and written to, never replaced: `--output /dev/null` must stay a device.
    """
    import stat

    from arrctl.sanitize import mask_known_bytes

    data = mask_known_bytes(data)  # the user's own key never reaches a report
    target = Path(os.path.realpath(path))
    try:
        try:
            found = os.stat(target)
        except FileNotFoundError:
            found = None
        if found is None or stat.S_ISREG(found.st_mode):
            _replace_atomically(target, data, stat.S_IMODE(found.st_mode) if found else 0o644)
        elif stat.S_ISDIR(found.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        else:
            _write_special(target, data, receiver, wait_s)
    except OSError as exc:
        raise DeliveryFailed(f"{path}: cannot write report: {exc.strerror or exc}") from None


def _replace_atomically(target: Path, data: bytes, mode: int) -> None:
    """Temporary file beside `target`, synced, then renamed over it; removed again if anything fails."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_special(target: Path, data: bytes, receiver: Any, wait_s: float) -> None:
    """Open a device or FIFO for writing and write all of `data`, waiting at most `wait_s` for a
    reader (a FIFO nobody opens) and waking at once on SIGINT/SIGTERM."""
    import select

    give_up = time.monotonic() + wait_s
    signal_fds = [receiver.fd] if receiver is not None else []

    def wait(write_fd: int | None) -> None:
        left = give_up - time.monotonic()
        if left <= 0:
            raise TimeoutError(errno.ETIMEDOUT, f"no reader took it within {wait_s:g}s")
        if write_fd is None:  # no reader yet: nothing to wait on but time, so poll
            select.select(signal_fds, [], [], min(left, 0.05))
        else:
            select.select(signal_fds, [write_fd], [], left)
        if receiver is not None:
            receiver.drain()
            receiver.check()

    while True:
        try:  # O_NONBLOCK: a FIFO without a reader is ENXIO now instead of a wait nobody can stop
            fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO or not _is_fifo(target):
                raise
            wait(None)
    try:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                wait(fd)
    finally:
        os.close(fd)


def _is_fifo(path: Path) -> bool:
    import stat

    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def _stdout_to_devnull() -> None:
    """Point fd 1 at /dev/null: stdout's reader is gone and nothing may be written there any more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


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
    own words stand in, with a note saying why. Exit 0 when the analysis ran, whatever the
    verdict; 1 when the item does not exist or nothing about it could be read; 2 on a usage error.

    \b
    Examples:
      arrctl explain vertex-ai-launcher-x7k2p
      arrctl explain 'https://console.cloud.google.com/vertex-ai/locations/us-central1/training/1428571428571428013/cpu?project=my-project'
      arrctl explain arr-demo/arr-coc-0-1/p2t6v9jx --json | jq -r .message
      gcloud logging read '...' --format='value(textPayload)' | arrctl explain --from-file -
    """
    from arrctl import explain as explaining
    from arrctl.render import ndjson

    if (item is None) == (from_file is None):
        raise click.UsageError("give an ID|URL or --from-file PATH|- (one of the two)")
    found = source_note = None
    if from_file is not None:
        from arrctl.extract import analyze, split_text

        raw = from_file.read()
        analysis = analyze(split_text(raw.decode("utf-8", "replace"))).to_dict()
    else:
        try:
            target = explaining.parse_target(item or "")
        except explaining.NotAnId as exc:
            fail(str(exc), EXIT_USAGE)
        with signals_handled() as receiver, config_errors(EXIT_USAGE):
            with app.session(deadline_s=deadline, receiver=receiver) as refresher:
                try:
                    analysis, source_note, found = explaining.explain(refresher, target)
                except explaining.NotExplained as exc:
                    fail(str(exc), EXIT_FAIL)
    if as_json:
        Output().bytes(ndjson(explaining.as_json(analysis)))
    else:
        for line in explaining.explain_lines(analysis, source_note, found):
            Output().line(line)
    sys.exit(EXIT_OK)


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
    from arrctl.launch import MATCH_WORDS, LaunchWaiter, Outcome
    from arrctl.render import ndjson
    from arrctl.sources.launcher import start_execution

    out = Output()
    execution = None
    started = time.monotonic()
    ends = started + timeout  # the whole command, the start of the job included (issue 12)
    outcome: Outcome | None = None
    try:
        with signals_handled() as receiver, config_errors(EXIT_USAGE):
            with app.session(receiver=receiver) as refresher:
                from arrctl.config import require_project

                config = refresher.config
                require_project(config)
                region = config.job_region()
                began = time.time()
                start_s = max(0.5, min(30.0, ends - time.monotonic()))
                result = refresher.run_one("launch", start_execution, {"region": region}, deadline=start_s)
                if result.state == "timeout":  # never start twice: the first may yet have been accepted
                    outcome = Outcome("timeout", "start", f"Cloud Run did not answer the start of {config.runner_job} "
                                      f"in {region} within {start_s:.0f}s; it may have started: see `arrctl get runner`",
                                      "")
                elif result.state != "ok" or not result.facts:
                    fail(result.error or "the runner job did not start", EXIT_FAIL)
                else:
                    execution, full_name = result.facts[0]["execution"], result.facts[0]["name"]
                    if no_wait:
                        out.bytes(ndjson({"result": "started", "execution": execution})) if as_json \
                            else out.line(execution)
                        sys.exit(EXIT_OK)
                    say(f"arrctl: started {execution} in {region}; waiting up to {timeout:g}s "
                        "for its Vertex AI job")
                    waiter = LaunchWaiter(execution, began, timeout, ends_at=time.time() + (ends - time.monotonic()))
                    outcome = _wait_for_launch(refresher, waiter, execution, full_name, ends, poll)
    except SystemExit as exiting:
        if exiting.code in (130, 143) and execution:
            say(f"arrctl: stopped waiting; execution {execution} is still running "
                f"(see `arrctl explain {execution}`)")
        raise
    assert outcome is not None
    if as_json:
        out.bytes(ndjson(outcome.to_dict(time.monotonic() - started)))
    else:
        from arrctl.render import clean

        word = {"success": "launched", "failure": "FAILED", "timeout": "TIMEOUT"}[outcome.result]
        out.line(f"{word}: {clean(outcome.message)}")
        if outcome.job is not None and outcome.job.get("url"):
            out.line(f"  {outcome.job['url']}")
        names = outcome.names()
        if names["wandb_run"]:
            out.line(f"  W&B run: {clean(names['wandb_run'])} (the job's label wandb-run-id; "
                     f"arrctl trace {clean(names['wandb_run'])} follows it)")
        if names["queue_item"]:
            out.line(f"  queue item: {clean(names['queue_item'])}")
        if outcome.match:
            out.line(f"  matched by {MATCH_WORDS[outcome.match]}")
        if execution:
            out.line(f"  execution: {execution}")
    sys.exit(outcome.exit_code)


def _wait_for_launch(refresher: Any, waiter: Any, execution: str, full_name: str, ends: float, poll: float) -> Any:
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
            if result.state == "ok" or result.rows:
                waiter.on_vertex(result.rows)
            if result.state != "ok":
                waiter.seen["vertex"] = f"Vertex AI {result.state}: {result.error}"
        else:
            for fact in result.facts:  # what the logs say first: a success with Runs: 0 needs it
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
    from arrctl import render
    from arrctl import trace as tracing

    out = Output()
    with signals_handled() as receiver, config_errors(EXIT_USAGE):
        with app.session(deadline_s=deadline, receiver=receiver) as refresher:
            from arrctl.config import require_project

            require_project(refresher.config)
            try:
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
    sys.exit(EXIT_FAIL if chain.unknown else EXIT_OK)


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
@click.option("--deadline", type=_deadline_seconds(), default=None, metavar="SECONDS",
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
              help="Switch a fault on (repeatable): SERVICE run|vertex|build|logging|wandb; KIND latency:S, hang, "
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
        fail(f"cannot write to stdout: {exc.strerror or exc}", EXIT_FAIL)
    sys.exit(code)


def main() -> None:
    """Console entry point: a closed stdout ends quietly with exit 0; no tracebacks for users."""
    try:
        cli.main(prog_name="arrctl", standalone_mode=True)
    except (StdoutClosed, BrokenPipeError):
        _quiet_exit()
    except StdoutFailed as exc:
        say(f"arrctl: error: {exc}")
        sys.exit(EXIT_FAIL)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 — a user sees one line; developers set ARRCTL_DEBUG
        if os.environ.get("ARRCTL_DEBUG"):
            raise
        say(f"arrctl: internal error: {type(exc).__name__}: {exc} (set ARRCTL_DEBUG=1 for details)")
        sys.exit(70)


def _quiet_exit() -> NoReturn:
    """stdout is gone: point it at /dev/null so the interpreter's final flush cannot complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
    except OSError:
        pass
    sys.exit(EXIT_OK)
