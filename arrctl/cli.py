"""The command line: thin click commands over the refresher, the renderer and the store."""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

import click

from arrctl import __version__
from arrctl.model import SOURCES

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class StdoutClosed(Exception):
    """The reader of stdout went away (`| head -3`): end quietly, exit 0."""


class Output:
    """Data to stdout, one flushed line at a time; a closed stdout ends the program quietly."""

    def __init__(self) -> None:
        self.stream = sys.stdout.buffer

    def line(self, text: str) -> None:
        """Write one text line and flush it."""
        self.bytes(text.encode("utf-8", "replace") + b"\n")

    def bytes(self, data: bytes) -> None:
        """Write raw bytes (an NDJSON line) and flush."""
        try:
            self.stream.write(data)
            self.stream.flush()
        except BrokenPipeError:
            raise StdoutClosed() from None


@dataclass
class App:
    """What the global options decided; commands build the rest lazily (imports cost)."""

    config_path: Path | None
    state_dir: Path | None
    demo: bool
    color: bool
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    grace_s: float = 0.5

    def warn(self, message: str) -> None:
        """A one-line diagnostic on stderr."""
        click.echo(f"arrctl: warning: {message}", err=True)

    def load_config(self) -> Any:
        """The configuration (demo, file + environment); ConfigError on a bad one."""
        from arrctl.config import default_config_path, demo_config, load_config

        if self.demo:
            return demo_config(self.env)
        explicit = self.config_path is not None or bool(self.env.get("ARRCTL_CONFIG"))
        path = self.config_path or default_config_path(self.env)
        return load_config(path, self.env, explicit=explicit)

    def state_path(self) -> Path:
        """The state directory (a demo/ folder inside it for --demo)."""
        from arrctl.config import default_state_dir

        base = self.state_dir or default_state_dir(self.env)
        return base / "demo" if self.demo else base

    @contextmanager
    def session(self, *, deadline_s: float | None = None, receiver: Any = None) -> Iterator[Any]:
        """Config, store, endpoints (and the sandbox for --demo) for one command's lifetime."""
        from arrctl.refresh import Endpoints, Refresher
        from arrctl.store import Store

        config = self.load_config()
        with ExitStack() as stack:
            if self.demo:
                from arrctl.sandbox import Sandbox

                faults = [f for f in self.env.get("ARRCTL_SANDBOX_FAULTS", "").split(",") if f.strip()]
                scenario = self.env.get("ARRCTL_SANDBOX_SCENARIO", "default")
                sandbox = stack.enter_context(Sandbox(scenario=scenario, faults=faults))
                endpoints = Endpoints(gcp=sandbox.gcp_endpoint, wandb=sandbox.wandb_base_url)
            else:
                endpoints = Endpoints(gcp=self.env.get("ARRCTL_GCP_ENDPOINT") or None,
                                      wandb=self.env.get("WANDB_BASE_URL") or None)
            store = Store(self.state_path(), warn=self.warn)
            stack.callback(store.close)
            try:
                store.prune(config.retention_days)
            except Exception as exc:  # noqa: BLE001 — pruning is housekeeping, never fatal
                self.warn(f"could not prune state: {exc}")
            yield Refresher(config, store, endpoints, grace_s=self.grace_s, receiver=receiver,
                            deadline_s=deadline_s, warn=self.warn)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error and exit with `code`."""
    click.echo(f"arrctl: error: {message}", err=True)
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


def use_color(no_color: bool) -> bool:
    """Colour only on a TTY, and never with --no-color or NO_COLOR set."""
    return not no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()


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
"""


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML config file [default: $ARRCTL_CONFIG, else $XDG_CONFIG_HOME/arrctl/config.toml].")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="State directory [default: $ARRCTL_STATE_DIR, else $XDG_STATE_HOME/arrctl].")
@click.option("--demo", is_flag=True, help="Run against the embedded fake cloud: no config, credentials or network.")
@click.option("--no-color", is_flag=True, help="Never colour the output (NO_COLOR is honoured too).")
@click.version_option(__version__, "--version", prog_name="arrctl")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, state_dir: Path | None, demo: bool, no_color: bool) -> None:
    ctx.obj = App(config_path=config_path, state_dir=state_dir, demo=demo, color=use_color(no_color))
    grace = os.environ.get("ARRCTL_KILL_GRACE")
    if grace:
        try:
            ctx.obj.grace_s = max(0.0, float(grace))
        except ValueError:
            raise click.UsageError(f"ARRCTL_KILL_GRACE={grace!r}: expected a number of seconds") from None


deadline_option = click.option(
    "--deadline", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
    help="Seconds each source's worker may take before it is killed [default: from config, 30].")


@cli.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--json", "as_json", is_flag=True, help="NDJSON: a row record per row, then a source record per source.")
@deadline_option
@click.pass_obj
def get(app: App, sources: tuple[str, ...], as_json: bool, deadline: float | None) -> None:
    """One refresh of the named sources (all five by default), then exit.

    SOURCE is runner, builds, vertex, active or completed. Exit 0 when every source
    answered, 1 when any failed or timed out (everything else is still printed), 2 on a
    usage or configuration error.

    \b
    Examples:
      arrctl get
      arrctl get runner vertex --deadline 10
      arrctl get --json | jq -c 'select(.type=="row" and .status=="FAILED")'
    """
    from arrctl import render

    chosen = parse_sources(sources)
    out = Output()
    with signals_handled() as receiver, config_errors(EXIT_USAGE):
        with app.session(deadline_s=deadline, receiver=receiver) as refresher:
            results = refresher.refresh(chosen)
    if as_json:
        out.bytes(b"".join(render.ndjson(record) for record in render.records(results)))
    else:
        for line in render.tables(results, time.time(), render.Style(app.color)):
            out.line(line)
    sys.exit(EXIT_OK if all(r.state == "ok" for r in results.values()) else EXIT_FAIL)


@cli.command()
@click.argument("sources", nargs=-1, metavar="[SOURCE]...")
@click.option("--json", "as_json", is_flag=True, help="NDJSON events: added, changed, removed, source, heartbeat.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Seconds between refreshes [default: from config, 30].")
@click.option("--heartbeat", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
              help="Print a heartbeat line after this many seconds without output [default: from config, 60].")
@click.option("--cycles", type=click.IntRange(min=1), default=None, metavar="N", help="Stop after N refreshes (exit 0).")
@deadline_option
@click.pass_obj
def watch(app: App, sources: tuple[str, ...], as_json: bool, interval: float | None,
          heartbeat: float | None, cycles: int | None, deadline: float | None) -> None:
    """Refresh every --interval seconds and print only what changed, one flushed line per change.

    The first refresh prints every row as added. A heartbeat line appears whenever
    --heartbeat seconds pass without another line, so an SSH session never sits silent.
    Ctrl-C stops it within a second (exit 130; 143 on SIGTERM), with every worker gone.

    \b
    Examples:
      arrctl watch
      arrctl --demo watch --interval 2
      arrctl watch --json | jq -c 'select(.type=="changed")'
    """
    from arrctl.watch import watch_loop

    chosen = parse_sources(sources)
    with signals_handled() as receiver, config_errors(EXIT_USAGE):
        with app.session(deadline_s=deadline, receiver=receiver) as refresher:
            config = refresher.config
            watch_loop(refresher, chosen, Output(), receiver, as_json=as_json, color=app.color,
                       interval=interval or config.watch_interval,
                       heartbeat=heartbeat or config.watch_heartbeat, cycles=cycles)
    sys.exit(EXIT_OK)


@cli.group()
def sandbox() -> None:
    """The embedded fake cloud that --demo and the tests use."""


@sandbox.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port on 127.0.0.1 [default: a free one].")
@click.option("--scenario", default="default", show_default=True, help="Scenario directory under fixtures/scenarios/.")
@click.option("--fault", "faults", multiple=True, metavar="SERVICE:KIND[:ARG]",
              help="Switch a fault on (repeatable): SERVICE run|vertex|build|logging|wandb; KIND latency:S, hang, "
                   "status:CODE, malformed, trickle, pages:N. ARRCTL_SANDBOX_FAULTS adds more (comma separated).")
def sandbox_serve(port: int, scenario: str, faults: tuple[str, ...]) -> None:
    """Run the fake cloud in the foreground and print the exports that point arrctl at it.

    \b
    Example:
      arrctl sandbox serve --fault vertex:latency:2 --fault wandb:status:503
      eval "$(arrctl sandbox serve | head -3)"   # in another shell, copy the export lines
    """
    from arrctl.sandbox import serve

    env_faults = [f for f in os.environ.get("ARRCTL_SANDBOX_FAULTS", "").split(",") if f.strip()]
    try:
        serve(port=port, scenario=scenario, faults=list(faults) + env_faults, stdout=sys.stdout)
    except ValueError as exc:
        fail(str(exc))


def main() -> None:
    """Console entry point: a closed stdout ends quietly with exit 0; no tracebacks for users."""
    try:
        cli.main(prog_name="arrctl", standalone_mode=True)
    except (StdoutClosed, BrokenPipeError):
        _quiet_exit()
    except KeyboardInterrupt:
        sys.exit(130)


def _quiet_exit() -> NoReturn:
    """stdout is gone: point it at /dev/null so the interpreter's final flush cannot complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    sys.exit(EXIT_OK)
