"""Signal handling for the supervisor: handlers only record; the main loop acts (supervisor's SignalReceiver).

The one exception is a blocking call outside any loop (reading a config file that is a FIFO,
starting the sandbox, importing the client libraries): no loop would look at the record until the
call returns, which may be never. Inside `interruptible()` the handler raises `Interrupted` itself,
so the call is abandoned at once (PEP 475: a handler that raises ends the interrupted system call).
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from types import FrameType
from typing import Iterator

from arrctl.kinds import ExitStatus


class Interrupted(BaseException):
    """The user or the system asked us to stop (SIGINT or SIGTERM).

    A BaseException, as KeyboardInterrupt is: no `except Exception` on the way may swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as the shell and honcho report it (130, 143)."""
        return ExitStatus(128 + self.signum)


class SignalReceiver:
    """Records SIGINT/SIGTERM and wakes a selector through a pipe (signal.set_wakeup_fd)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous: dict[int, object] = {}
        self._previous_wakeup = -1
        self._raise_at_once = 0  # > 0 inside interruptible()

    @property
    def fd(self) -> int:
        """Readable when a signal arrived; register it in a selector."""
        return self._read_fd

    def install(self) -> "SignalReceiver":
        """Start recording SIGINT and SIGTERM."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._record)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        return self

    def _record(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self._raise_at_once:
            raise Interrupted(self.received)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A stretch of blocking calls that a signal abandons at once (raising Interrupted)."""
        self.check()
        self._raise_at_once += 1
        try:
            yield
        finally:
            self._raise_at_once -= 1

    def drain(self) -> None:
        """Empty the wakeup pipe."""
        try:
            while os.read(self._read_fd, 512):
                pass
        except BlockingIOError:
            pass

    def check(self) -> None:
        """Raise Interrupted if a signal was recorded."""
        if self.received is not None:
            raise Interrupted(self.received)

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking at once on a signal; then raise Interrupted if one came."""
        import select

        self.check()
        if seconds > 0:
            select.select([self._read_fd], [], [], seconds)
            self.drain()
        self.check()

    def uninstall(self) -> None:
        """Restore the previous handlers."""
        signal.set_wakeup_fd(self._previous_wakeup)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()
        for fd in (self._read_fd, self._write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        self._read_fd = self._write_fd = -1
