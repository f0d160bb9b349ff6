"""The supervisor: fork one worker per source, drain every pipe at once, kill each at its deadline.

Rules this module keeps (docs/architecture.md, "Process model"): nothing waits past a deadline; a worker is sent
SIGTERM at its deadline, SIGKILL after a short grace, and always reaped; rows a killed worker
already sent are kept; the parent closes its copy of each write end right after forking so that
EOF means the worker is gone.
"""

from __future__ import annotations

import enum
import selectors
import signal
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from arrctl.kinds import ErrorKind, SourceState
from arrctl.model import Row, SourceResult, TerminalFact
from arrctl.signals import SignalReceiver
from arrctl.sources import Emitter, FetchContext
from arrctl.system import Child, System
from arrctl.worker import run_worker

TICK_S = 0.25  # the longest wait between two looks at signals, deadlines and `tick`


@dataclass
class WorkerSpec:
    """One source to fetch in this refresh."""

    source: str
    ctx: FetchContext
    deadline_s: float
    fetch: Callable[[FetchContext, Emitter], None] | None = None  # ad-hoc fetches (launch, explain, tests)


class WorkerState(enum.Enum):
    """Where a worker is in its life; it only ever moves forward."""

    RUNNING = 1
    TERMINATING = 2  # SIGTERM sent at its deadline
    KILLED = 3  # SIGKILL sent: the grace passed, or the refresh was interrupted
    REAPED = 4  # exit status collected, pipe closed: nothing of it is left


@dataclass
class _Worker:
    spec: WorkerSpec
    child: Child
    started: float
    state: WorkerState = WorkerState.RUNNING
    term_at: float | None = None  # when SIGTERM went (its deadline): SIGKILL follows after the grace
    ended_at: float | None = None  # when it was seen gone
    exitcode: int | None = None
    buffer: bytearray = field(default_factory=bytearray)
    scanned: int = 0
    plan: list[str] = field(default_factory=list)
    parts: dict[str | None, list[Row]] = field(default_factory=dict)
    facts: list[TerminalFact] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    log_reads: list[dict[str, Any]] = field(default_factory=list)
    answer: SourceState | None = None  # what the worker's own last message said (done: OK)
    error: str | None = None
    error_kind: ErrorKind = ErrorKind.OTHER
    pipe_open: bool = True

    @property
    def deadline(self) -> float:
        return self.started + self.spec.deadline_s

    def move(self, state: WorkerState) -> None:
        """Enter a later state (KILLED may skip TERMINATING; nothing goes back)."""
        if state.value <= self.state.value:
            raise ValueError(f"worker {self.spec.source}: {self.state.name} cannot become {state.name}")
        self.state = state


class Supervisor:
    """Runs one refresh: a worker process per source, each bounded by its deadline."""

    def __init__(self, grace_s: float = 0.5, receiver: SignalReceiver | None = None,
                 system: System | None = None) -> None:
        self.grace_s = grace_s
        self.receiver = receiver
        self.system = system if system is not None else System()

    def clock(self) -> float:
        return self.system.clock()

    def run(self, specs: list[WorkerSpec], tick: Callable[[], None] | None = None) -> dict[str, SourceResult]:
        """Fetch every spec concurrently; return a result per source, whatever the workers did.

        `tick` is called at least every 0.25 s while waiting (watch prints heartbeats from it).
        """
        selector = self.system.selector()
        workers: list[_Worker] = []
        try:
            for spec in specs:
                workers.append(self._start(spec, selector))
            if self.receiver is not None:
                selector.register(self.receiver.fd, selectors.EVENT_READ, None)
            while True:
                pending = [w for w in workers if w.state is not WorkerState.REAPED]
                if not pending:
                    break
                self._step(pending, selector, [])
                if tick is not None:
                    tick()
        except BaseException:
            for worker in workers:
                self._kill_now(worker)
            raise
        finally:
            for worker in workers:
                self._reap(worker, selector)
            selector.close()
        return {w.spec.source: self._result(w) for w in workers}

    def poll(self, specs: Callable[[str], WorkerSpec], names: list[str], interval_s: float, until: float,
             on_result: Callable[[str, SourceResult], bool], tick: Callable[[], bool] | None = None) -> None:
        """Keep one worker per name going, each on its own rhythm, until `until` (our clock).

        A name's worker is started again `interval_s` after its previous one started (at once if
        that has passed), so a hung source never delays the others' results: `on_result` gets
        each result the moment its worker is gone. `on_result` or `tick` (called at least every
        0.25 s) returning True ends the polling. Every worker still running is killed and reaped.
        """
        selector = self.system.selector()
        running: dict[str, _Worker] = {}
        next_start = {name: self.clock() for name in names}
        try:
            if self.receiver is not None:
                selector.register(self.receiver.fd, selectors.EVENT_READ, None)
            while self.clock() < until:
                now = self.clock()
                for name in names:
                    if name not in running and next_start[name] <= now:
                        running[name] = self._start(specs(name), selector)
                starts = [t for n, t in next_start.items() if n not in running] + [until]
                self._step(list(running.values()), selector, starts)
                for name, worker in list(running.items()):
                    if worker.state is WorkerState.REAPED:
                        del running[name]
                        next_start[name] = max(worker.started + interval_s, self.clock())
                        if on_result(name, self._result(worker)):
                            return
                if tick is not None and tick():
                    return
        except BaseException:
            for worker in running.values():
                self._kill_now(worker)
            raise
        finally:
            for worker in running.values():
                self._kill_now(worker)
                self._reap(worker, selector)
            selector.close()

    def _start(self, spec: WorkerSpec, selector: selectors.BaseSelector) -> _Worker:
        def run(write_fd: int, parent_pid: int) -> None:
            run_worker(spec.source, spec.ctx, write_fd, parent_pid, spec.fetch)

        child = self.system.spawn(f"arrctl-{spec.source}", run)
        worker = _Worker(spec=spec, child=child, started=self.clock())
        selector.register(child.fd, selectors.EVENT_READ, ("pipe", worker))
        selector.register(child.sentinel, selectors.EVENT_READ, ("exit", worker))
        return worker

    def _step(self, workers: list[_Worker], selector: selectors.BaseSelector, wakes: list[float]) -> None:
        """Signal who is past a deadline, wait for the next event (at most TICK_S), serve it."""
        now = self.clock()
        for worker in workers:
            self._enforce_deadline(worker, now)
        wake = min([self._next_event(w) for w in workers] + wakes, default=now + TICK_S)
        self._serve(selector, max(0.0, min(wake - self.clock(), TICK_S)))
        if self.receiver is not None:
            self.receiver.check()

    def _next_event(self, worker: _Worker) -> float:
        if worker.state is WorkerState.RUNNING:
            return worker.deadline
        if worker.state is WorkerState.TERMINATING:
            assert worker.term_at is not None
            return worker.term_at + self.grace_s
        return self.clock() + 0.05  # KILLED: its exit is a moment away

    def _enforce_deadline(self, worker: _Worker, now: float) -> None:
        if worker.state is WorkerState.RUNNING and now >= worker.deadline:
            worker.term_at = now
            worker.move(WorkerState.TERMINATING)
            self.system.signal(worker.child.pid, signal.SIGTERM)
        elif worker.state is WorkerState.TERMINATING and worker.term_at is not None \
                and now >= worker.term_at + self.grace_s:
            worker.move(WorkerState.KILLED)
            self.system.signal(worker.child.pid, signal.SIGKILL)

    def _kill_now(self, worker: _Worker) -> None:
        if worker.state in (WorkerState.RUNNING, WorkerState.TERMINATING):
            worker.move(WorkerState.KILLED)
            self.system.signal(worker.child.pid, signal.SIGKILL)

    def _reap(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        """Collect the worker's exit (SIGKILL if it outlives the grace), sweep its group, close its pipe."""
        if worker.state is WorkerState.REAPED:
            return
        child = worker.child
        code = self.system.join(child, self.grace_s)
        if code is None:
            if worker.state is not WorkerState.KILLED:
                worker.move(WorkerState.KILLED)
            self.system.signal(child.pid, signal.SIGKILL)
            code = self.system.join(child, None)
        worker.exitcode = code
        self.system.sweep(child.pid)
        self.system.release(child)
        self._close_pipe(worker, selector)
        try:
            selector.unregister(child.sentinel)
        except (KeyError, ValueError):
            pass
        if worker.ended_at is None:
            worker.ended_at = self.clock()
        worker.move(WorkerState.REAPED)

    def _close_pipe(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        if worker.pipe_open:
            try:
                selector.unregister(worker.child.fd)
            except (KeyError, ValueError):
                pass
            self.system.close(worker.child.fd)
            worker.pipe_open = False

    def _serve(self, selector: selectors.BaseSelector, timeout: float) -> None:
        """Wait up to `timeout` for pipes, exits and signals; read what is ready."""
        for key, _ in selector.select(timeout):
            if key.data is None:
                assert self.receiver is not None
                self.receiver.drain()
                self.receiver.check()
                continue
            kind, worker = key.data
            if worker.state is WorkerState.REAPED:
                continue
            self._drain(worker, selector)  # a pipe's data, or whatever a worker wrote before dying
            if kind == "exit":
                # gone: what it wrote is read; a grandchild may hold the write end, so stop listening
                worker.ended_at = self.clock()
                self._reap(worker, selector)

    def _drain(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        while worker.pipe_open:
            chunk = self.system.read(worker.child.fd)
            if chunk is None:
                break
            if not chunk:
                self._close_pipe(worker, selector)
                break
            worker.buffer += chunk
            self._parse(worker)

    def _parse(self, worker: _Worker) -> None:
        buffer = worker.buffer
        start = 0
        while True:
            end = buffer.find(b"\n", max(start, worker.scanned))
            if end < 0:
                worker.scanned = len(buffer)
                break
            line = bytes(buffer[start:end])
            start = end + 1
            worker.scanned = start
            try:
                self._handle(worker, orjson.loads(line))
            except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
                worker.error = worker.error or "worker sent a malformed message"
        if start:
            del buffer[:start]
            worker.scanned = max(0, worker.scanned - start)

    def _handle(self, worker: _Worker, message: dict[str, Any]) -> None:
        kind = message["kind"]
        if kind == "rows":
            worker.parts[message.get("part")] = message["rows"]
        elif kind == "plan":
            worker.plan = list(message["parts"])
        elif kind == "facts":
            worker.facts.extend(message["facts"])
        elif kind == "results":
            worker.results.extend(message["results"])
        elif kind == "log_reads":
            worker.log_reads.append(dict(message["report"]))
        elif kind == "call":
            api = str(message["api"])
            worker.calls[api] = worker.calls.get(api, 0) + int(message.get("n", 1))
        elif kind == "done":
            worker.answer = SourceState.OK
        elif kind == "error":
            worker.error_kind = ErrorKind(message.get("error_kind") or ErrorKind.OTHER)
            worker.answer = SourceState.TIMEOUT if worker.error_kind is ErrorKind.TIMEOUT else SourceState.ERROR
            worker.error = str(message.get("message") or "unknown error")

    def _result(self, worker: _Worker) -> SourceResult:
        spec = worker.spec
        end = worker.ended_at if worker.ended_at is not None else self.clock()
        result = SourceResult(source=spec.source, facts=worker.facts, results=worker.results, calls=worker.calls,
                              took_s=max(0.0, end - worker.started), log_reads=worker.log_reads)
        if None in worker.parts:
            result.rows = list(worker.parts[None])
        else:
            order = worker.plan + [p for p in worker.parts if p not in worker.plan]
            result.rows = [row for part in order for row in worker.parts.get(part, [])]
        # parts (regions) that never sent rows: failed or cut off; shown from memory by the merge
        result.missing = [p for p in worker.plan if p not in worker.parts]
        if worker.answer is SourceState.OK:
            result.state = SourceState.OK
            result.missing = []
        elif worker.answer is not None:
            result.state, result.error, result.error_kind = worker.answer, worker.error, worker.error_kind
        elif worker.term_at is not None:  # signalled at its deadline before it answered
            result.state, result.error_kind = SourceState.TIMEOUT, ErrorKind.TIMEOUT
            result.error = f"no answer within {spec.deadline_s:g}s" + _missing_text(result.missing, worker.plan)
        else:
            result.state, result.error_kind = SourceState.ERROR, ErrorKind.OTHER
            result.error = _exit_text(worker.exitcode)
        return result


def _missing_text(missing: list[str], plan: list[str]) -> str:
    if not plan or not missing:
        return ""
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    return f"; {len(plan) - len(missing)} of {len(plan)} answered, missing: {shown}"


def _exit_text(code: int | None) -> str:
    if code is None:
        return "worker vanished before answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker killed by {name} before answering"
    return f"worker exited with status {code} before answering"
