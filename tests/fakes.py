"""Test doubles shared by several test modules: an emitter that records, a system in virtual time."""

from __future__ import annotations

import selectors
import signal
from dataclasses import dataclass, field
from typing import Any

import orjson

from arrctl.system import Child


class FakeEmitter:
    """Records what a fetch reports, as the supervisor would see it."""

    def __init__(self) -> None:
        self.plans: list[list[str]] = []
        self.parts: list[tuple[str | None, list[Any]]] = []
        self.facts_sent: list[dict[str, Any]] = []
        self.results_sent: list[dict[str, Any]] = []
        self.calls: dict[str, int] = {}
        self.log_reports: list[dict[str, Any]] = []

    @property
    def planned(self) -> list[str] | None:
        """The last plan sent, or None."""
        return self.plans[-1] if self.plans else None

    def plan(self, parts: list[str]) -> None:
        self.plans.append(list(parts))

    def rows(self, rows: list[Any], part: str | None = None) -> None:
        self.parts.append((part, list(rows)))

    def facts(self, facts: list[dict[str, Any]]) -> None:
        self.facts_sent.extend(facts)

    def results(self, results: list[dict[str, Any]]) -> None:
        self.results_sent.extend(results)

    def call(self, api: str, n: int = 1) -> None:
        self.calls[api] = self.calls.get(api, 0) + n

    def log_reads(self, report: dict[str, Any]) -> None:
        self.log_reports.append(report)

    def final(self) -> list[Any]:
        """The last complete set of rows (part None)."""
        complete = [rows for part, rows in self.parts if part is None]
        return complete[-1] if complete else []

    def by_part(self) -> dict[str | None, list[Any]]:
        """Rows sent per named part (a region, a location), the last batch of each; the complete
        set (part None) is `final()`'s."""
        return {part: rows for part, rows in self.parts if part is not None}


def message(kind: str, **fields: Any) -> bytes:
    """One framed worker message, as worker.PipeEmitter writes it."""
    return orjson.dumps({"kind": kind, **fields}) + b"\n"


@dataclass
class Script:
    """How a fake worker behaves, in seconds after its start."""

    writes: list[tuple[float, bytes]] = field(default_factory=list)
    exits_at: float | None = None  # None: never on its own (it hangs)
    code: int = 0
    on_term: str = "die"  # "die" | "ignore" (a worker that traps SIGTERM)


@dataclass
class _FakeProcess:
    name: str
    script: Script
    started: float
    child: Child
    exit_time: float | None = None
    code: int | None = None
    delivered: int = 0
    released: bool = False

    def __post_init__(self) -> None:
        if self.script.exits_at is not None:
            self.exit_time, self.code = self.started + self.script.exits_at, self.script.code

    def due(self, upto: float) -> list[bytes]:
        """Writes made by `upto` and not read yet (none after the exit)."""
        end = upto if self.exit_time is None else min(upto, self.exit_time)
        return [data for at, data in self.script.writes[self.delivered:] if self.started + at <= end]

    def next_write(self) -> float | None:
        pending = self.script.writes[self.delivered:]
        if not pending:
            return None
        at = self.started + pending[0][0]
        return at if self.exit_time is None or at <= self.exit_time else None


class FakeSystem:
    """The OS of arrctl.system.System in virtual time: fake children follow their `Script`.

    Time moves only when the supervisor waits (a select or a join with a timeout), to the next
    event or by the whole timeout. `signals` records (time, source, signal name) of every signal sent.
    """

    def __init__(self, scripts: dict[str, Script | list[Script]]) -> None:
        self.scripts = {name: list(s) if isinstance(s, list) else [s] for name, s in scripts.items()}
        self.now = 0.0
        self.signals: list[tuple[float, str, str]] = []
        self.swept: list[str] = []
        self.processes: list[_FakeProcess] = []
        self.open_fds: set[int] = set()
        self._next_fd = 100

    # --- the System interface -------------------------------------------------------------
    def clock(self) -> float:
        return self.now

    def spawn(self, name: str, run: Any) -> Child:
        source = name.removeprefix("arrctl-")
        queue = self.scripts[source]
        script = queue.pop(0) if len(queue) > 1 else queue[0]
        fd, sentinel = self._next_fd, self._next_fd + 1
        self._next_fd += 2
        child = Child(pid=len(self.processes) + 1000, fd=fd, sentinel=sentinel)
        self.processes.append(_FakeProcess(source, script, self.now, child))
        self.open_fds.add(fd)
        return child

    def selector(self) -> "FakeSelector":
        return FakeSelector(self)

    def read(self, fd: int) -> bytes | None:
        process = self._by_fd(fd)
        assert fd in self.open_fds, "read of a closed pipe"
        data = process.due(self.now)
        if data:
            process.delivered += len(data)
            return b"".join(data)
        if process.exit_time is not None and process.exit_time <= self.now:
            return b""
        return None

    def close(self, fd: int) -> None:
        assert fd in self.open_fds, "pipe closed twice"
        self.open_fds.discard(fd)

    def signal(self, pid: int, signum: int) -> None:
        process = self._by_pid(pid)
        self.signals.append((self.now, process.name, signal.Signals(signum).name))
        if process.exit_time is not None and process.exit_time <= self.now:
            return
        if signum == signal.SIGKILL or (signum == signal.SIGTERM and process.script.on_term == "die"):
            process.exit_time, process.code = self.now, -signum

    def sweep(self, pid: int) -> None:
        self.swept.append(self._by_pid(pid).name)

    def join(self, child: Child, timeout: float | None) -> int | None:
        process = self._by_pid(child.pid)
        if process.exit_time is not None and process.exit_time <= self.now:
            return process.code
        if timeout is None:
            raise AssertionError(f"join() of {process.name} would wait forever")
        if process.exit_time is not None and process.exit_time <= self.now + timeout:
            self.now = process.exit_time
            return process.code
        self.now += timeout
        return None

    def release(self, child: Child) -> None:
        self._by_pid(child.pid).released = True

    # --- helpers ---------------------------------------------------------------------------
    def _by_fd(self, fd: int) -> _FakeProcess:
        return next(p for p in self.processes if fd in (p.child.fd, p.child.sentinel))

    def _by_pid(self, pid: int) -> _FakeProcess:
        return next(p for p in self.processes if p.child.pid == pid)

    def ready_at(self, fd: int) -> float | None:
        """When `fd` (a pipe or an exit sentinel) next has something to say, or None."""
        process = self._by_fd(fd)
        if fd == process.child.sentinel:
            return process.exit_time
        times = [t for t in (process.next_write(), process.exit_time) if t is not None]
        return min(times) if times else None


class FakeSelector:
    """selectors' interface over FakeSystem's pipes and sentinels."""

    def __init__(self, system: FakeSystem) -> None:
        self.system = system
        self.keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: int, events: int, data: Any = None) -> selectors.SelectorKey:
        assert fileobj not in self.keys, f"fd {fileobj} registered twice"
        key = selectors.SelectorKey(fileobj, fileobj, events, data)
        self.keys[fileobj] = key
        return key

    def unregister(self, fileobj: int) -> selectors.SelectorKey:
        return self.keys.pop(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        times = {fd: self.system.ready_at(fd) for fd in self.keys if key_is_ours(self.keys[fd])}
        soonest = min((t for t in times.values() if t is not None), default=None)
        limit = self.system.now + (timeout or 0.0)
        if soonest is None or soonest > limit:
            self.system.now = limit
            return []
        self.system.now = max(self.system.now, soonest)
        return [(self.keys[fd], selectors.EVENT_READ) for fd, t in times.items()
                if t is not None and t <= self.system.now]

    def close(self) -> None:
        self.keys.clear()


def key_is_ours(key: selectors.SelectorKey) -> bool:
    """A pipe or sentinel key (the signal pipe's key has no data)."""
    return key.data is not None
