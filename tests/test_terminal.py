"""The installed `arrctl` on a pseudo-terminal: lines fit the terminal's current width; a pipe gets whole lines."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import orjson
import pytest

from arrctl.sanitize import strip_escapes
from arrctl.textfit import display_width

ARRCTL = str(Path(sys.executable).with_name("arrctl"))
pytestmark = pytest.mark.timeout(120)


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("ARRCTL_SANDBOX", "WANDB_", "ARRCTL_GCP")) and k not in ("COLUMNS", "LINES")}
    out.update({"TERM": "xterm-256color", **extra})
    return out


def set_size(fd: int, columns: int, rows: int = 50) -> None:
    """Resize the terminal (the kernel sends SIGWINCH to its foreground process group)."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


class Pty:
    """`arrctl` with stdout (and stdin) on a new pseudo-terminal of a given size; stderr on a pipe."""

    def __init__(self, args: list[str], columns: int, **extra_env: str) -> None:
        self.master, slave = os.openpty()
        set_size(slave, columns)
        self.proc = subprocess.Popen([ARRCTL, *args], stdin=slave, stdout=slave, stderr=subprocess.PIPE,
                                     env=env(**extra_env), start_new_session=True)
        os.close(slave)
        self.data = b""

    def read_until(self, predicate, timeout: float = 60.0) -> bool:
        """Read output until predicate(text so far) holds, the program ends, or `timeout` passes."""
        end = time.monotonic() + timeout
        while not predicate(self.text()):
            left = end - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the other side is closed
                    return predicate(self.text())
                if not chunk:
                    return predicate(self.text())
                self.data += chunk
        return True

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def lines(self) -> list[str]:
        """Complete lines as the terminal shows them (colour codes removed)."""
        return [strip_escapes(line) for line in self.text().split("\r\n")[:-1]]

    def finish(self, timeout: float = 60.0) -> int:
        self.read_until(lambda _: self.proc.poll() is not None, timeout)
        self.read_until(lambda _: False, 0.5)  # what is left in the buffer
        code = self.proc.wait(timeout=10)
        os.close(self.master)
        return code


def widest(lines: list[str]) -> int:
    return max(display_width(line) for line in lines)


@pytest.fixture(scope="module")
def demo_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("terminal-state")


@pytest.mark.parametrize("columns", [80, 200])
def test_get_fits_the_terminal(columns: int, demo_state: Path) -> None:
    term = Pty(["--state-dir", str(demo_state), "--demo", "get"], columns)
    code = term.finish()
    assert code == 0, term.proc.stderr.read() if term.proc.stderr else ""
    lines = term.lines()
    assert "Runner executions" in lines and "Completed W&B runs" in lines
    assert "\x1b[" in term.text()  # a terminal gets colour, which takes no columns
    assert widest(lines) <= columns
    if columns == 200:
        assert widest(lines) > 80  # no fixed 80-column cut
    else:
        assert any(line.endswith("…") for line in lines)  # something had to give way


def test_get_in_a_pipe_prints_whole_lines(demo_state: Path) -> None:
    done = subprocess.run([ARRCTL, "--state-dir", str(demo_state), "--demo", "get"], capture_output=True,
                          text=True, timeout=60, env=env())
    assert done.returncode == 0, done.stderr
    rows = subprocess.run([ARRCTL, "--state-dir", str(demo_state), "--demo", "get", "--json"], capture_output=True,
                          text=True, timeout=60, env=env())
    messages = [r["message"] for r in map(orjson.loads, rows.stdout.splitlines())
                if r["type"] == "row" and r["status"] == "FAILED" and r["message"]]
    longest = max(messages, key=len)
    assert len(longest) > 80
    assert any(line.endswith(longest) for line in done.stdout.splitlines())  # whole, not cut
    # nothing is cut: an ellipsis only inside a message that the extractor itself cut (extract.MESSAGE_LIMIT)
    # (a Vertex job's CUDA OOM from its replica's log, issue 15)
    rest = done.stdout
    for message in messages:
        rest = rest.replace(message, "")
    assert "\x1b[" not in done.stdout and "…" not in rest


def test_watch_follows_a_resize(demo_state: Path) -> None:
    """Heartbeats (one a second after the first refresh) are whole at 200 columns, cut at 60 after a resize."""
    term = Pty(["--state-dir", str(demo_state), "--demo", "watch", "--interval", "600", "--heartbeat", "1"], 200)
    try:
        def beats(text: str) -> list[str]:
            return [line for line in strip_escapes(text).split("\r\n")[:-1] if "· heartbeat" in line]

        assert term.read_until(lambda text: len(beats(text)) >= 1, timeout=90), term.text()[-2000:]
        wide = beats(term.text())[0]
        assert display_width(wide) > 60 and wide.endswith("completed=ok")  # whole at 200 columns
        before = len(term.lines())
        set_size(term.master, 60)
        # one more line may have been written at the old width while the resize happened
        assert term.read_until(lambda _: sum("· heartbeat" in line for line in term.lines()[before + 1:]) >= 2,
                               timeout=30), term.text()[-2000:]
        after = term.lines()[before + 1:]
        assert after and widest(after) <= 60, after
        assert all(line.endswith("…") for line in after if "· heartbeat" in line)
    finally:
        os.killpg(term.proc.pid, signal.SIGINT)
        assert term.finish() == 130


@pytest.mark.parametrize(("args", "extra", "coloured"), [
    ([], {}, True),
    ([], {"TERM": "dumb"}, False),
    (["--color=never"], {}, False),
    (["--color=always"], {"TERM": "dumb"}, True),
], ids=["auto", "term-dumb", "never", "always-beats-dumb"])
def test_colour_on_a_terminal(args: list[str], extra: dict[str, str], coloured: bool, demo_state: Path) -> None:
    term = Pty([*args, "--state-dir", str(demo_state), "--demo", "get", "builds"], 100, **extra)
    assert term.finish() == 0
    assert "Active builds" in term.text()
    assert ("\x1b[" in term.text()) is coloured, term.text()


def test_colour_choice() -> None:
    from arrctl.output import use_color

    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    tty, pipe = Stream(True), Stream(False)
    assert use_color("auto", {"TERM": "xterm"}, tty) and not use_color("auto", {"TERM": "xterm"}, pipe)
    assert not use_color("auto", {"TERM": "dumb"}, tty)
    assert not use_color("auto", {"NO_COLOR": "1"}, tty) and use_color("auto", {"NO_COLOR": ""}, tty)
    assert use_color("always", {"NO_COLOR": "1", "TERM": "dumb"}, pipe)
    assert not use_color("never", {}, tty) and not use_color("auto", {}, None)


def test_colour_always_in_a_pipe_for_less_r(demo_state: Path) -> None:
    done = subprocess.run([ARRCTL, "--color=always", "--state-dir", str(demo_state), "--demo", "get", "builds"],
                          capture_output=True, text=True, timeout=60, env=env())
    assert done.returncode == 0 and "\x1b[1mActive builds\x1b[0m" in done.stdout
    both = subprocess.run([ARRCTL, "--color=always", "--no-color", "get"], capture_output=True, text=True,
                          timeout=30, env=env())
    assert both.returncode == 2 and "contradict" in both.stderr
