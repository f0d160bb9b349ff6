"""The supervisor: fork one worker per source, drain every pipe at once, kill each at its deadline.

Rules this module keeps (see ARCHITECTURE.md): nothing waits past a deadline; a worker is sent
SIGTERM at its deadline, SIGKILL after a short grace, and always reaped; rows a killed worker
already sent are kept; the parent closes its copy of each write end right after forking so that
EOF means the worker is gone.
"""

from __future__ import annotations

import os
import selectors
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import multiprocess
import orjson

from arrctl.model import Row, SourceResult
from arrctl.signals import SignalReceiver
from arrctl.sources import Emitter, FetchContext
from arrctl.worker import run_worker

_FORK = multiprocess.get_context("fork")
READ_CHUNK = 1 << 20


@dataclass
class WorkerSpec:
    """One source to fetch in this refresh."""

    source: str
    ctx: FetchContext
    deadline_s: float
    fetch: Callable[[FetchContext, Emitter], None] | None = None  # tests inject misbehaving fetches


@dataclass
class _Worker:
    spec: WorkerSpec
    process: Any
    fd: int
    started: float
    buffer: bytearray = field(default_factory=bytearray)
    scanned: int = 0
    plan: list[str] = field(default_factory=list)
    parts: dict[str | None, list[Row]] = field(default_factory=dict)
    facts: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    log_reads: list[dict[str, Any]] = field(default_factory=list)
    outcome: str | None = None  # "done" | "error" from the worker's own last message
    error: str | None = None
    eof: bool = False
    exited: bool = False
    term_at: float | None = None
    killed: bool = False
    timed_out: bool = False
    finished_at: float | None = None
    exitcode: int | None = None

    @property
    def deadline(self) -> float:
        return self.started + self.spec.deadline_s


class Supervisor:
    """Runs one refresh: a worker process per source, each bounded by its deadline."""

    def __init__(self, grace_s: float = 0.5, receiver: SignalReceiver | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_s = grace_s
        self.receiver = receiver
        self.clock = clock

    def run(self, specs: list[WorkerSpec], tick: Callable[[], None] | None = None) -> dict[str, SourceResult]:
        """Fetch every spec concurrently; return a result per source, whatever the workers did.

        `tick` is called at least every 0.25 s while waiting (watch prints heartbeats from it).
        """
        selector = selectors.DefaultSelector()
        workers: list[_Worker] = []
        try:
            for spec in specs:
                workers.append(self._start(spec, selector))
            if self.receiver is not None:
                selector.register(self.receiver.fd, selectors.EVENT_READ, None)
            self._loop(workers, selector, tick)
        except BaseException:
            for worker in workers:
                self._kill_now(worker)
            raise
        finally:
            for worker in workers:
                self._reap(worker)
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
        selector = selectors.DefaultSelector()
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
                for worker in running.values():
                    self._enforce_deadline(worker, now)
                wake = min([self._next_event(w) for w in running.values()]
                           + [t for n, t in next_start.items() if n not in running] + [until])
                self._serve(selector, max(0.0, min(wake - self.clock(), 0.25)))
                if self.receiver is not None:
                    self.receiver.check()
                for name, worker in list(running.items()):
                    if worker.exited and not worker.eof:
                        self._close_pipe(worker, selector)  # a grandchild may hold the write end
                    if worker.exited and worker.eof:
                        worker.finished_at = self.clock()
                        del running[name]
                        self._reap(worker)
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
                self._reap(worker)
            selector.close()

    def _start(self, spec: WorkerSpec, selector: selectors.BaseSelector) -> _Worker:
        read_fd, write_fd = os.pipe()
        process = _FORK.Process(
            target=run_worker, name=f"arrctl-{spec.source}", daemon=False,
            args=(spec.source, spec.ctx, write_fd, os.getpid(), spec.fetch),
        )
        try:
            process.start()
        finally:
            os.close(write_fd)  # ours closed at once, or EOF would never come
        os.set_blocking(read_fd, False)
        worker = _Worker(spec=spec, process=process, fd=read_fd, started=self.clock())
        selector.register(read_fd, selectors.EVENT_READ, ("pipe", worker))
        selector.register(process.sentinel, selectors.EVENT_READ, ("exit", worker))
        return worker

    def _loop(self, workers: list[_Worker], selector: selectors.BaseSelector,
              tick: Callable[[], None] | None = None) -> None:
        while True:
            pending = [w for w in workers if w.finished_at is None]
            if not pending:
                return
            now = self.clock()
            for worker in pending:
                self._enforce_deadline(worker, now)
            wake = min(self._next_event(w) for w in pending)
            timeout = max(0.0, min(wake - self.clock(), 0.25))
            self._serve(selector, timeout)
            if self.receiver is not None:
                self.receiver.check()
            if tick is not None:
                tick()
            now = self.clock()
            for worker in pending:
                if worker.exited and (worker.eof or worker.fd < 0):
                    worker.finished_at = now
                elif worker.exited and not worker.eof:
                    # a grandchild may hold the write end; the worker is gone, stop listening
                    self._close_pipe(worker, selector)
                    worker.finished_at = now

    def _next_event(self, worker: _Worker) -> float:
        if worker.term_at is None:
            return worker.deadline
        if not worker.killed:
            return worker.term_at + self.grace_s
        return self.clock() + 0.05

    def _enforce_deadline(self, worker: _Worker, now: float) -> None:
        if worker.term_at is None and now >= worker.deadline:
            worker.timed_out = worker.outcome is None
            worker.term_at = now
            self._signal(worker, signal.SIGTERM)
        elif worker.term_at is not None and not worker.killed and now >= worker.term_at + self.grace_s:
            worker.killed = True
            self._signal(worker, signal.SIGKILL)

    def _signal(self, worker: _Worker, signum: int) -> None:
        pid = worker.process.pid
        for send in (lambda: os.killpg(pid, signum), lambda: os.kill(pid, signum)):
            try:
                send()
            except (ProcessLookupError, PermissionError):
                pass

    def _kill_now(self, worker: _Worker) -> None:
        if worker.process.pid is not None and worker.process.exitcode is None:
            self._signal(worker, signal.SIGKILL)
            worker.killed = True

    def _reap(self, worker: _Worker) -> None:
        process = worker.process
        if process.pid is None:
            return
        if process.exitcode is None:
            process.join(self.grace_s)
        if process.exitcode is None:
            self._signal(worker, signal.SIGKILL)
            process.join()
        worker.exitcode = process.exitcode
        try:  # sweep helpers the worker spawned into its group (e.g. wandb-core)
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.close()
        except ValueError:
            pass
        if worker.fd >= 0:
            os.close(worker.fd)
            worker.fd = -1

    def _close_pipe(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        if worker.fd >= 0:
            try:
                selector.unregister(worker.fd)
            except KeyError:
                pass
            os.close(worker.fd)
            worker.fd = -1
        worker.eof = True

    def _serve(self, selector: Any, timeout: float) -> None:
        """Wait up to `timeout` for pipes, exits and signals; read what is ready."""
        for key, _ in selector.select(timeout):
            if key.data is None:
                assert self.receiver is not None
                self.receiver.drain()
                self.receiver.check()
                continue
            kind, worker = key.data
            if kind == "exit":
                worker.exited = True
                selector.unregister(key.fileobj)
            self._drain(worker, selector)  # a pipe's data, or whatever a worker wrote before dying

    def _drain(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        while worker.fd >= 0:
            try:
                chunk = os.read(worker.fd, READ_CHUNK)
            except BlockingIOError:
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
        elif kind == "log_reads":
            worker.log_reads.append(dict(message["report"]))
        elif kind == "call":
            api = str(message["api"])
            worker.calls[api] = worker.calls.get(api, 0) + int(message.get("n", 1))
        elif kind == "done":
            worker.outcome = "done"
        elif kind == "error":
            worker.outcome = "timeout" if message.get("timeout") else "error"
            worker.error = str(message.get("message") or "unknown error")

    def _result(self, worker: _Worker) -> SourceResult:
        spec = worker.spec
        end = worker.finished_at or self.clock()
        result = SourceResult(source=spec.source, facts=worker.facts, calls=worker.calls,
                              took_s=max(0.0, end - worker.started), log_reads=worker.log_reads)
        if None in worker.parts:
            result.rows = list(worker.parts[None])
        else:
            order = worker.plan + [p for p in worker.parts if p not in worker.plan]
            result.rows = [row for part in order for row in worker.parts.get(part, [])]
        # parts (regions) that never sent rows: failed or cut off; shown from memory by the merge
        result.missing = [p for p in worker.plan if p not in worker.parts]
        if worker.outcome == "done":
            result.state = "ok"
            result.missing = []
        elif worker.outcome in ("error", "timeout"):
            result.state, result.error = worker.outcome, worker.error
        elif worker.timed_out:
            result.state = "timeout"
            result.error = f"no answer within {spec.deadline_s:g}s" + _missing_text(result.missing, worker.plan)
        else:
            result.state = "error"
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
