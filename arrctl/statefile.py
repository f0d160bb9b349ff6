"""The state file: where it is, its schema and migrations, opening it safely, and write
transactions whose wait for another process's lock a signal can end (store.py keeps the data).

Several arrctl processes may use one file at once (WAL, a busy timeout, BEGIN IMMEDIATE for
writes); a damaged file is set aside and rebuilt; an unusable directory or file means an
in-memory stand-in and a warning. Never fatal.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

SCHEMA_VERSION = 4  # 2: `reported` has a consumer column; 3: memory is keyed by a scope (what it came from);
# 4: a terminal fact keeps the category its logs' analysis gave (a one-line message alone may not tell it)
FILE_NAME = "state.sqlite3"
BUSY_TIMEOUT_S = 15.0
# sqlite's own busy wait sleeps in C and never returns to Python, so a signal would wait for it;
# the write lock is asked for in tries this short, with a look for a recorded signal between them
LOCK_TRY_MS = 100
LEGACY_SCOPE = "(before scopes)"  # reports of an older arrctl: which scope they were of is not known

_SCHEMA = """
CREATE TABLE IF NOT EXISTS terminal (
    scope TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL, verdict TEXT,
    message TEXT, rule TEXT, jobs INTEGER, line INTEGER,
    first_seen REAL NOT NULL, finished TEXT, category TEXT,
    PRIMARY KEY (scope, source, id)
);
CREATE TABLE IF NOT EXISTS last_good (
    scope TEXT NOT NULL, source TEXT NOT NULL, saved_at REAL NOT NULL, rows BLOB NOT NULL,
    PRIMARY KEY (scope, source)
);
CREATE TABLE IF NOT EXISTS log_reads (
    source TEXT NOT NULL, id TEXT NOT NULL, attempts INTEGER NOT NULL, next_at REAL NOT NULL,
    reason TEXT, PRIMARY KEY (source, id)
);
CREATE TABLE IF NOT EXISTS reported (
    consumer TEXT NOT NULL, scope TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL,
    first_reported REAL NOT NULL, last_seen REAL NOT NULL,
    PRIMARY KEY (consumer, scope, source, id)
);
CREATE TABLE IF NOT EXISTS links (
    scope TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL, links BLOB NOT NULL, saved_at REAL NOT NULL,
    PRIMARY KEY (scope, source, id)
);
CREATE TABLE IF NOT EXISTS baseline (
    consumer TEXT NOT NULL, scope TEXT NOT NULL, source TEXT NOT NULL,
    taken_at REAL NOT NULL, last_seen REAL NOT NULL,
    PRIMARY KEY (consumer, scope, source)
);
"""

# What the reports of an older schema become (their scope is unknown: every scope consults them, so an
# upgrade pages nothing twice). Their terminal facts and last good rows are dropped: rows of unknown
# origin are never shown, and a fact costs one log read to learn again.
_MIGRATE_REPORTS = {
    1: "SELECT 'check', ?, source, id, reported_at, reported_at FROM reported_old",
    2: "SELECT consumer, ?, source, id, first_reported, last_seen FROM reported_old",
}


def open_state(path: Path | None, warn: Callable[[str], None], clock: Callable[[], float],
               interrupted: Callable[[], None]) -> tuple[sqlite3.Connection, bool]:
    """The state database at `path` and whether it persists: an in-memory stand-in (with a warning)
    when the directory or the file cannot be used; a damaged file is set aside and rebuilt."""
    if path is None:
        return memory_db(), False
    try:
        if not path.parent.exists():  # a directory the user made keeps the mode they chose
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
        if not path.parent.is_dir():  # e.g. a file named `demo` in the state directory
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent))
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise PermissionError(f"{path.parent} is not writable")
    except OSError as exc:
        warn(f"state directory {path.parent} is unusable ({_reason(exc)}); running without persistence")
        return memory_db(), False
    give_up = time.monotonic() + BUSY_TIMEOUT_S
    attempt = 0
    while True:
        attempt += 1
        try:
            return _connect(path, interrupted), True
        except sqlite3.OperationalError as exc:
            # another arrctl is creating or checkpointing the file: wait for it, never give up early
            if _is_busy(exc):
                if time.monotonic() < give_up:
                    time.sleep(0.05)
                    interrupted()
                    continue
            warn(f"state file {path} cannot be used ({exc}); running without persistence")
            return memory_db(), False
        except sqlite3.DatabaseError as exc:
            if attempt > 2 or not _is_corruption(exc):
                warn(f"state file {path} cannot be used ({exc}); running without persistence")
                return memory_db(), False
            _set_aside(path, exc, clock, warn)

def _connect(path: Path, interrupted: Callable[[], None]) -> sqlite3.Connection:
    old_umask = os.umask(0o077)  # files 0600, including -wal and -shm
    try:
        db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, factory=Connection)
        db.interrupted = interrupted
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            with immediate(db):  # read the version under the lock: two processes may upgrade at once
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise NewerSchema(
                        f"schema version {version} is newer than this arrctl ({SCHEMA_VERSION})")
                if version in _MIGRATE_REPORTS:
                    db.execute("ALTER TABLE reported RENAME TO reported_old")
                    db.execute("DROP TABLE IF EXISTS terminal")
                    db.execute("DROP TABLE IF EXISTS last_good")
                for statement in _statements(_SCHEMA):
                    db.execute(statement)
                if version == 3:  # facts of 3 keep their words; their category is derived from them
                    db.execute("ALTER TABLE terminal ADD COLUMN category TEXT")
                if version in _MIGRATE_REPORTS:
                    db.execute("INSERT OR IGNORE INTO reported (consumer, scope, source, id, first_reported,"
                               " last_seen) " + _MIGRATE_REPORTS[version], (LEGACY_SCOPE,))
                    db.execute("DROP TABLE reported_old")
                if version != SCHEMA_VERSION:
                    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("PRAGMA quick_check").fetchone()
        except BaseException:
            db.close()
            raise
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    return db

def _set_aside(path: Path, exc: Exception, clock: Callable[[], float], warn: Callable[[str], None]) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(clock()))
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            os.replace(src, Path(str(target) + suffix))
    warn(f"state file {path} was damaged ({exc}); moved it to {target.name} and started afresh")

def memory_db() -> sqlite3.Connection:
    """The in-memory stand-in: the same schema, nothing kept."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    for statement in _statements(_SCHEMA):
        db.execute(statement)
    return db


class Connection(sqlite3.Connection):
    """A connection to the state file that knows how to look for a signal while it waits for a lock."""

    interrupted: Callable[[], None] = staticmethod(lambda: None)


def begin_immediate(db: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting up to BUSY_TIMEOUT_S for another process's write lock.

    The wait is made of LOCK_TRY_MS tries with `db.interrupted()` between them, so Ctrl-C or
    SIGTERM ends a command within a fraction of a second even while another process holds the lock.
    """
    if not isinstance(db, Connection):  # the in-memory stand-in: no other process to wait for
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
                if not _is_busy(exc) or time.monotonic() >= give_up:
                    raise
            db.interrupted()
    finally:
        db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the lock up front (no deadlock on upgrade)."""
    begin_immediate(db)
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class NewerSchema(sqlite3.DatabaseError):
    """The file was written by a newer arrctl: set aside like a damaged one, never half-read."""


def _primary_code(exc: sqlite3.Error) -> int | None:
    """SQLite's primary result code of an error (its extended code's low byte), when it has one."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock (SQLITE_BUSY, SQLITE_LOCKED): worth waiting for."""
    return _primary_code(exc) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """The file is damaged or not a database (SQLITE_CORRUPT, SQLITE_NOTADB), or of a newer arrctl."""
    return isinstance(exc, NewerSchema) or _primary_code(exc) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
