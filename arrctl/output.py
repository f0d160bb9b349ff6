"""What a command writes: data lines to stdout, one-line diagnostics to stderr, and its exit.

stdout carries data only (a closed reader ends the command quietly, exit 0); stderr carries
`arrctl: error: …` and `arrctl: warning: …` lines. Every byte goes through the sanitiser's mask
of known secrets. Signals (SIGINT/SIGTERM) and configuration errors end a command here, with
the SPEC's exit statuses.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator, NoReturn

import click

from arrctl.kinds import ExitStatus


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


def say(message: str) -> None:
    """A line on stderr, known secrets masked."""
    from arrctl.sanitize import mask_known

    click.echo(mask_known(message), err=True)


def fail(message: str, code: int = ExitStatus.USAGE) -> NoReturn:
    """Print a one-line error and exit with `code`."""
    say(f"arrctl: error: {message}")
    sys.exit(code)


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


def stdout_to_devnull() -> None:
    """Point fd 1 at /dev/null: stdout's reader is gone and nothing may be written there any more
    (the interpreter's last flush of stdout must not complain)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


def quiet_exit() -> NoReturn:
    """stdout is gone: end with exit 0, saying nothing."""
    stdout_to_devnull()
    sys.exit(ExitStatus.OK)
