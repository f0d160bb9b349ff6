"""The state store: SQLite in the state directory — terminal memory, last good rows, check reports.

Safe with several arrctl processes at once (WAL, a busy timeout, BEGIN IMMEDIATE for writes),
and with a kill at any moment (each refresh is one transaction). A damaged file is set aside
and rebuilt; an unwritable directory means running without persistence. Never fatal.
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import orjson

from arrctl.model import Row

SCHEMA_VERSION = 2  # 2: `reported` has a consumer column (the CLI uses one: "check") and a last_seen
FILE_NAME = "state.sqlite3"
BUSY_TIMEOUT_S = 15.0
# sqlite's own busy wait sleeps in C and never returns to Python, so a signal would wait for it;
# the write lock is asked for in tries this short, with a look for a recorded signal between them
LOCK_TRY_MS = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS terminal (
    source TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL, verdict TEXT,
    message TEXT, rule TEXT, jobs INTEGER, line INTEGER,
    first_seen REAL NOT NULL, finished TEXT,
    PRIMARY KEY (source, id)
);
CREATE TABLE IF NOT EXISTS last_good (
    source TEXT PRIMARY KEY, saved_at REAL NOT NULL, rows BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS log_reads (
    source TEXT NOT NULL, id TEXT NOT NULL, attempts INTEGER NOT NULL, next_at REAL NOT NULL,
    reason TEXT, PRIMARY KEY (source, id)
);
CREATE TABLE IF NOT EXISTS reported (
    consumer TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL,
    first_reported REAL NOT NULL, last_seen REAL NOT NULL,
    PRIMARY KEY (consumer, source, id)
);
"""

Fact = dict[str, Any]


class Store:
    """One open state database (or an in-memory stand-in when the directory is unusable)."""

    def __init__(self, directory: Path | None, warn: Callable[[str], None] = lambda m: None,
                 clock: Callable[[], float] = time.time, interrupted: Callable[[], None] | None = None) -> None:
        self.directory = directory
        self.warn = warn
        self.clock = clock
        # raises when the command must stop (SignalReceiver.check); called while waiting for a lock
        self.interrupted = interrupted or (lambda: None)
        self.persistent = False
        self.db = self._open()

    # -- opening -------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The database file, or None when running without persistence."""
        return self.directory / FILE_NAME if self.directory is not None else None

    def _open(self) -> sqlite3.Connection:
        path = self.path
        if path is None:
            return self._memory()
        try:
            if not path.parent.exists():  # a directory the user made keeps the mode they chose
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(path.parent, 0o700)
            if not os.access(path.parent, os.W_OK | os.X_OK):
                raise PermissionError(f"{path.parent} is not writable")
        except OSError as exc:
            self.warn(f"state directory {path.parent} is unusable ({_reason(exc)}); running without persistence")
            return self._memory()
        give_up = time.monotonic() + BUSY_TIMEOUT_S
        attempt = 0
        while True:
            attempt += 1
            try:
                db = self._connect(path)
                self.persistent = True
                return db
            except sqlite3.OperationalError as exc:
                # another arrctl is creating or checkpointing the file: wait for it, never give up early
                if "locked" in str(exc) or "busy" in str(exc):
                    if time.monotonic() < give_up:
                        time.sleep(0.05)
                        self.interrupted()
                        continue
                self.warn(f"state file {path} cannot be used ({exc}); running without persistence")
                return self._memory()
            except sqlite3.DatabaseError as exc:
                if attempt > 2 or not _is_corruption(exc):
                    self.warn(f"state file {path} cannot be used ({exc}); running without persistence")
                    return self._memory()
                self._set_aside(path, exc)

    def _connect(self, path: Path) -> sqlite3.Connection:
        old_umask = os.umask(0o077)  # files 0600, including -wal and -shm
        try:
            db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, factory=_Connection)
            db.interrupted = self.interrupted
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(f"schema version {version} is newer than this arrctl ({SCHEMA_VERSION})")
                with _immediate(db):
                    if version == 1:  # v1 kept one `reported` list: it becomes the plain `check`'s
                        db.execute("ALTER TABLE reported RENAME TO reported_v1")
                    for statement in _statements(_SCHEMA):
                        db.execute(statement)
                    if version == 1:
                        db.execute("INSERT OR IGNORE INTO reported (consumer, source, id, first_reported, last_seen)"
                                   " SELECT 'check', source, id, reported_at, reported_at FROM reported_v1")
                        db.execute("DROP TABLE reported_v1")
                    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                db.execute("PRAGMA quick_check").fetchone()
            except BaseException:
                db.close()
                raise
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        return db

    def _set_aside(self, path: Path, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self.clock()))
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(path) + suffix)
            if src.exists():
                os.replace(src, Path(str(target) + suffix))
        self.warn(f"state file {path} was damaged ({exc}); moved it to {target.name} and started afresh")

    def _memory(self) -> sqlite3.Connection:
        db = sqlite3.connect(":memory:", isolation_level=None)
        for statement in _statements(_SCHEMA):
            db.execute(statement)
        return db

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- terminal memory -----------------------------------------------------------------

    def facts(self, source: str, ids: Iterable[str] | None = None) -> dict[str, Fact]:
        """Stored terminal facts of a source (all of them, or those of `ids`)."""
        cursor = self.db.execute(
            "SELECT id, status, verdict, message, rule, jobs, line, first_seen, finished FROM terminal WHERE source=?",
            (source,),
        )
        wanted = set(ids) if ids is not None else None
        out: dict[str, Fact] = {}
        for id_, status, verdict, message, rule, jobs, line, first_seen, finished in cursor:
            if wanted is None or id_ in wanted:
                out[id_] = {"source": source, "id": id_, "status": status, "verdict": verdict,
                            "message": message, "rule": rule, "jobs": jobs, "line": line,
                            "first_seen": first_seen, "finished": finished}
        return out

    def save_refresh(self, facts: Iterable[Fact], good_rows: dict[str, list[Row]]) -> None:
        """Store new terminal facts and each answering source's rows, in one transaction."""
        now = self.clock()
        with _immediate(self.db):
            for fact in facts:
                self.db.execute(
                    "INSERT OR IGNORE INTO terminal (source, id, status, verdict, message, rule, jobs, line, first_seen, finished)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (fact["source"], fact["id"], fact["status"], fact.get("verdict"), fact.get("message"),
                     fact.get("rule"), fact.get("jobs"), fact.get("line"), now, fact.get("finished")),
                )
            for source, rows in good_rows.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO last_good (source, saved_at, rows) VALUES (?,?,?)",
                    (source, now, orjson.dumps(rows)),
                )

    def last_good(self, source: str) -> tuple[list[Row], float] | None:
        """The rows of the last refresh in which the source answered, and when that was."""
        found = self.db.execute("SELECT rows, saved_at FROM last_good WHERE source=?", (source,)).fetchone()
        if found is None:
            return None
        try:
            return orjson.loads(found[0]), float(found[1])
        except orjson.JSONDecodeError:
            return None

    # -- Cloud Logging reads cut short: retried with backoff, by every process alike -------

    def log_retries(self, source: str) -> dict[str, tuple[int, float, str | None]]:
        """Ids of `source` whose log reads were cut short: (times, when the next may be, reason)."""
        return {id_: (int(attempts), float(next_at), reason) for id_, attempts, next_at, reason in self.db.execute(
            "SELECT id, attempts, next_at, reason FROM log_reads WHERE source=?", (source,))}

    def record_log_reads(self, source: str, read: Iterable[str], cut: dict[str, str],
                         delay: Callable[[int], float]) -> None:
        """Forget the ids read to the end; count one more cut read of the others, next try after `delay(times)`."""
        now = self.clock()
        with _immediate(self.db):
            for id_ in read:
                self.db.execute("DELETE FROM log_reads WHERE source=? AND id=?", (source, id_))
            for id_, reason in cut.items():
                found = self.db.execute("SELECT attempts FROM log_reads WHERE source=? AND id=?",
                                        (source, id_)).fetchone()
                attempts = (found[0] if found else 0) + 1
                self.db.execute("INSERT OR REPLACE INTO log_reads (source, id, attempts, next_at, reason)"
                                " VALUES (?,?,?,?,?)", (source, id_, attempts, now + delay(attempts), reason))

    def logging_hold(self, project: str) -> tuple[int, float]:
        """(429s in a row, until when) for the Cloud Logging reads of a project; (0, 0) when none."""
        found = self.db.execute("SELECT attempts, next_at FROM log_reads WHERE source='logging' AND id=?",
                                (project,)).fetchone()
        return (int(found[0]), float(found[1])) if found else (0, 0.0)

    def record_logging_quota(self, project: str, rate_limited: bool, hold: Callable[[int], float]) -> float:
        """After a read: hold the project's reads after a 429 (longer each time), else lift the hold; the hold's end."""
        now = self.clock()
        with _immediate(self.db):
            if not rate_limited:
                self.db.execute("DELETE FROM log_reads WHERE source='logging' AND id=?", (project,))
                return 0.0
            found = self.db.execute("SELECT attempts FROM log_reads WHERE source='logging' AND id=?",
                                    (project,)).fetchone()
            times = (found[0] if found else 0) + 1
            until = now + hold(times)
            self.db.execute("INSERT OR REPLACE INTO log_reads (source, id, attempts, next_at, reason)"
                            " VALUES ('logging',?,?,?,?)", (project, times, until, "429"))
            return until

    # -- what check has reported ---------------------------------------------------------

    def unreported(self, keys: Iterable[tuple[str, str]], consumer: str = "check") -> set[tuple[str, str]]:
        """The (source, id) pairs `consumer` has not been told of yet (read only)."""
        told = {(s, i) for s, i in self.db.execute(
            "SELECT source, id FROM reported WHERE consumer=?", (consumer,))}
        return {key for key in keys if key not in told}

    def claim_unreported(self, keys: Iterable[tuple[str, str]], consumer: str = "check") -> set[tuple[str, str]]:
        """Mark (source, id) pairs reported to `consumer`; return those it had not been told of (atomic).

        Each consumer (a check format and output) pages on its own, so a Prometheus textfile check
        every minute does not swallow the failures a mailing Nagios check must send.
        """
        now = self.clock()
        fresh: set[tuple[str, str]] = set()
        with _immediate(self.db):
            for source, id_ in keys:
                cursor = self.db.execute(
                    "INSERT OR IGNORE INTO reported (consumer, source, id, first_reported, last_seen)"
                    " VALUES (?,?,?,?,?)", (consumer, source, id_, now, now))
                if cursor.rowcount:
                    fresh.add((source, id_))
                else:  # still in view: keep it from being pruned and paged again
                    self.db.execute("UPDATE reported SET last_seen=? WHERE consumer=? AND source=? AND id=?",
                                    (now, consumer, source, id_))
        return fresh

    def has_reports(self) -> bool:
        """Whether any check has run against this store."""
        return self.db.execute("SELECT 1 FROM reported LIMIT 1").fetchone() is not None

    def prune(self, retention_days: float) -> int:
        """Forget terminal facts and reports older than the retention; return how many went."""
        cutoff = self.clock() - retention_days * 86400
        with _immediate(self.db):
            gone = self.db.execute("DELETE FROM terminal WHERE first_seen < ?", (cutoff,)).rowcount
            gone += self.db.execute("DELETE FROM reported WHERE last_seen < ?", (cutoff,)).rowcount
            gone += self.db.execute("DELETE FROM log_reads WHERE next_at < ?", (cutoff,)).rowcount
        return int(gone)


class _Connection(sqlite3.Connection):
    """A connection to the state file that knows how to look for a signal while it waits for a lock."""

    interrupted: Callable[[], None] = staticmethod(lambda: None)


def _begin_immediate(db: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting up to BUSY_TIMEOUT_S for another process's write lock.

    The wait is made of LOCK_TRY_MS tries with `db.interrupted()` between them, so Ctrl-C or
    SIGTERM ends a command within a fraction of a second even while another process holds the lock.
    """
    if not isinstance(db, _Connection):  # the in-memory stand-in: no other process to wait for
        db.execute("BEGIN IMMEDIATE")
        return
    give_up = time.monotonic() + BUSY_TIMEOUT_S
    db.execute(f"PRAGMA busy_timeout={LOCK_TRY_MS}")
    try:
        while True:
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() >= give_up:
                    raise
            db.interrupted()
    finally:
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")


@contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the lock up front (no deadlock on upgrade)."""
    _begin_immediate(db)
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("not a database", "malformed", "corrupt", "schema version"))


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
