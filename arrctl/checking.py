"""`arrctl check`: one refresh judged, reported exactly once, delivered where asked.

The report protocol (SPEC, "check"): the new failures are claimed under the store's write lock,
judged (arrctl.health, pure), delivered to stdout or `--output`, and the claim is given back when
the report does not go out, so that a lost report loses no page. A regular `--output` file is
replaced atomically; a device or FIFO is written to, with a bounded wait for its reader.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from pathlib import Path
from typing import Any

from arrctl.kinds import SourceState
from arrctl.kinds import CheckState
from arrctl.output import Output, StdoutClosed, StdoutFailed, fail, signals_handled, stdout_to_devnull

CHECK_CONSUMER = "check"  # one list of reported failures per state directory


def run_check(app: Any, fmt: str, output: str | None, flags: dict[str, Any], deadline: float | None) -> int:
    """The check command: its exit status is the verdict's (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)."""
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
                select = filters.parse_filter(**flags)
                with app.session(deadline_s=deadline, receiver=receiver) as refresher:
                    # memory sees every row; the judgement (and what counts as reported) only those shown
                    results = filters.apply(refresher.refresh(list(SOURCES)), select, time.time())
                    verdict = report_check(refresher.store, results, refresher.config, deliver, warn=app.warn)
            except ConfigError as exc:
                verdict = health.unknown(str(exc))
                deliver(verdict)
        except DeliveryFailed as exc:
            fail(str(exc), CheckState.UNKNOWN)
    return verdict.code


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
                                complete=[s for s, r in results.items() if r.state == SourceState.OK and not r.hidden],
                                unfinished=health.unfinished_failures(results, config.builds_failure_severity),
                                now=now)
            # each disagreement once, like a failure; the misfired crash is recorded as told with it
            told = store.claim(dict.fromkeys([d.key for d in found] + sorted(misfires)), CHECK_CONSUMER, now=now)
        except Exception as exc:  # noqa: BLE001 — judged as UNKNOWN below
            warn(f"could not record reported failures: {exc}")
            claim = None
    limits = health.Thresholds(config.wandb_heartbeat_warn_s, config.builds_queued_warn_s,
                               config.builds_failure_severity)
    new = claim.new if claim is not None else set(health.failure_keys(results, config.builds_failure_severity)) - misfires
    fresh = [d for d in found if told is None or d.key in told.new]
    verdict = health.judge(results, new, now, limits,
                           persistent=claim is not None, skipped=len(claim.baseline) if claim else 0,
                           late=len(claim.late) if claim else 0,
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
        stdout_to_devnull()
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
