"""The state store: SQLite in the state directory — terminal memory, last good rows, check reports.

Safe with several arrctl processes at once (WAL, a busy timeout, BEGIN IMMEDIATE for writes),
and with a kill at any moment (each refresh is one transaction). A damaged file is set aside
and rebuilt; an unwritable directory means running without persistence. Never fatal.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import orjson

from arrctl.model import ROW_KEYS, Row

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

Fact = dict[str, Any]
Key = tuple[str, str]  # (source, id)


@dataclass
class Claim:
    """What one check took under the write lock: to page now, to record silently, to give back."""

    new: set[Key] = field(default_factory=set)
    """Failures this check must report."""
    baseline: set[Key] = field(default_factory=set)
    """Failures recorded as seen without a page (first check of a source, ended before the window)."""
    inserted: list[Key] = field(default_factory=list)
    """Reported rows this claim wrote (released if the report cannot be delivered)."""
    marked: list[str] = field(default_factory=list)
    """Sources whose first check this was (released with the rest)."""


class Store:
    """One open state database (or an in-memory stand-in when the directory is unusable).

    Everything in it belongs to `scope` (project, job, W&B project, endpoints: see
    `refresh.memory_scope`); memory of another scope is never read.
    """

    def __init__(self, directory: Path | None, warn: Callable[[str], None] = lambda m: None,
                 clock: Callable[[], float] = time.time, scope: str = "",
                 interrupted: Callable[[], None] | None = None) -> None:
        self.directory = directory
        self.warn = warn
        self.clock = clock
        self.scope = scope
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
            if not path.parent.is_dir():  # e.g. a file named `demo` in the state directory
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path.parent))
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
                with _immediate(db):  # read the version under the lock: two processes may upgrade at once
                    version = db.execute("PRAGMA user_version").fetchone()[0]
                    if version > SCHEMA_VERSION:
                        raise sqlite3.DatabaseError(
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
            "SELECT id, status, verdict, message, rule, jobs, line, first_seen, finished, category FROM terminal"
            " WHERE scope=? AND source=?", (self.scope, source),
        )
        wanted = set(ids) if ids is not None else None
        out: dict[str, Fact] = {}
        for id_, status, verdict, message, rule, jobs, line, first_seen, finished, category in cursor:
            if wanted is None or id_ in wanted:
                out[id_] = {"source": source, "id": id_, "status": status, "verdict": verdict,
                            "message": message, "rule": rule, "jobs": jobs, "line": line,
                            "first_seen": first_seen, "finished": finished, "category": category}
        return out

    def save_refresh(self, facts: Iterable[Fact], good_rows: dict[str, list[Row]]) -> None:
        """Store new terminal facts and each answering source's rows, in one transaction."""
        now = self.clock()
        with _immediate(self.db):
            for fact in facts:
                self.db.execute(
                    "INSERT OR IGNORE INTO terminal (scope, source, id, status, verdict, message, rule, jobs, line,"
                    " first_seen, finished, category) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (self.scope, fact["source"], fact["id"], fact["status"], fact.get("verdict"),
                     fact.get("message"), fact.get("rule"), fact.get("jobs"), fact.get("line"), now,
                     fact.get("finished"), fact.get("category")),
                )
            for source, rows in good_rows.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO last_good (scope, source, saved_at, rows) VALUES (?,?,?,?)",
                    (self.scope, source, now, orjson.dumps(rows)),
                )

    def last_good(self, source: str) -> tuple[list[Row], float] | None:
        """The rows of the last refresh in which the source answered, and when that was."""
        found = self.db.execute("SELECT rows, saved_at FROM last_good WHERE scope=? AND source=?",
                                (self.scope, source)).fetchone()
        if found is None:
            return None
        try:
            stored = orjson.loads(found[0])
        except orjson.JSONDecodeError:
            return None
        if not isinstance(stored, list) or not all(isinstance(r, dict) and "id" in r for r in stored):
            return None
        return [_every_key(r) for r in stored], float(found[1])

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

    def _told(self, consumer: str) -> set[Key]:
        """What `consumer` was told of in this scope (or, before scopes existed, in any)."""
        return {(s, i) for s, i in self.db.execute(
            "SELECT source, id FROM reported WHERE consumer=? AND scope IN (?, ?)",
            (consumer, self.scope, LEGACY_SCOPE))}

    def unreported(self, keys: Iterable[Key], consumer: str = "check") -> set[Key]:
        """The (source, id) pairs `consumer` has not been told of yet (read only)."""
        told = self._told(consumer)
        return {key for key in keys if key not in told}

    def claim(self, failures: Mapping[Key, float | None], consumer: str = "check", *,
              first_window_s: float | None = None, complete: Iterable[str] = ()) -> Claim:
        """Mark failures (key -> when it ended, epoch or None) reported to `consumer`, under the write lock.

        Two checks at once never claim the same failure: the read and the write are one transaction.
        With `first_window_s`, a source that has no baseline yet (the first check of this scope, or
        the first after the store was rebuilt) records failures that ended longer ago than the window
        as seen without paging them; the baseline is taken once the source answered in full (`complete`).
        """
        now = self.clock()
        claim = Claim()
        with _immediate(self.db):
            told = self._told(consumer)
            based = {s for (s,) in self.db.execute(
                "SELECT source FROM baseline WHERE consumer=? AND scope=?", (consumer, self.scope))}
            for key, ended in failures.items():
                source, id_ = key
                if key in told:  # still in view: keep it from being pruned and paged again
                    self.db.execute("UPDATE reported SET last_seen=? WHERE consumer=? AND scope=? AND source=?"
                                    " AND id=?", (now, consumer, self.scope, source, id_))
                    continue
                self.db.execute("INSERT INTO reported (consumer, scope, source, id, first_reported, last_seen)"
                                " VALUES (?,?,?,?,?,?)", (consumer, self.scope, source, id_, now, now))
                claim.inserted.append(key)
                old = ended is not None and first_window_s is not None and now - ended > first_window_s
                (claim.baseline if old and source not in based else claim.new).add(key)
            if first_window_s is not None:
                for source in sorted(set(complete) - based):
                    self.db.execute("INSERT INTO baseline (consumer, scope, source, taken_at, last_seen)"
                                    " VALUES (?,?,?,?,?)", (consumer, self.scope, source, now, now))
                    claim.marked.append(source)
                self.db.execute("UPDATE baseline SET last_seen=? WHERE consumer=? AND scope=?",
                                (now, consumer, self.scope))
        return claim

    def release(self, claim: Claim, consumer: str = "check") -> None:
        """Give a claim back (its report was not delivered): the next check reports those failures."""
        with _immediate(self.db):
            for source, id_ in claim.inserted:
                self.db.execute("DELETE FROM reported WHERE consumer=? AND scope=? AND source=? AND id=?",
                                (consumer, self.scope, source, id_))
            for source in claim.marked:
                self.db.execute("DELETE FROM baseline WHERE consumer=? AND scope=? AND source=?",
                                (consumer, self.scope, source))

    def claim_unreported(self, keys: Iterable[Key], consumer: str = "check") -> set[Key]:
        """Mark (source, id) pairs reported to `consumer`; return those it had not been told of (atomic).

        Each consumer pages on its own (the CLI uses one, "check": every format shares it).
        """
        return self.claim(dict.fromkeys(keys), consumer).new

    def has_reports(self) -> bool:
        """Whether any check has run against this store (in this scope)."""
        return self.db.execute("SELECT 1 FROM reported WHERE scope=? LIMIT 1", (self.scope,)).fetchone() is not None

    def prune(self, retention_days: float) -> int:
        """Forget terminal facts and reports older than the retention; return how many went."""
        cutoff = self.clock() - retention_days * 86400
        with _immediate(self.db):
            gone = self.db.execute("DELETE FROM terminal WHERE first_seen < ?", (cutoff,)).rowcount
            gone += self.db.execute("DELETE FROM reported WHERE last_seen < ?", (cutoff,)).rowcount
            gone += self.db.execute("DELETE FROM log_reads WHERE next_at < ?", (cutoff,)).rowcount
            # a scope unused for the retention starts again with a first check
            self.db.execute("DELETE FROM baseline WHERE last_seen < ?", (cutoff,))
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


def _every_key(stored: dict[str, Any]) -> Row:
    """A remembered row with exactly the row keys of this version (one saved by an older arrctl lacks
    `category` and `links`): absent values null, `links` and `extra` objects."""
    row = {key: stored.get(key) for key in ROW_KEYS}
    for key in ("links", "extra"):
        if not isinstance(row[key], dict):
            row[key] = {}
    return row  # type: ignore[return-value]


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
