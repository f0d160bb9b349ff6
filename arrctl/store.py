"""The state store: SQLite in the state directory — terminal memory, last good rows, check reports.

Safe with several arrctl processes at once (WAL, a busy timeout, BEGIN IMMEDIATE for writes),
and with a kill at any moment (each refresh is one transaction). A damaged file is set aside
and rebuilt; an unwritable directory means running without persistence. Never fatal. The file
itself (schema, migrations, opening, locked transactions) is arrctl/statefile.py's.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import orjson

from arrctl.model import ROW_KEYS, Row, TerminalFact
from arrctl.statefile import FILE_NAME, LEGACY_SCOPE, immediate, open_state

Fact = TerminalFact
Key = tuple[str, str]  # (source, id)


@dataclass
class Claim:
    """What one check took under the write lock: to page now, to record silently, to give back."""

    new: set[Key] = field(default_factory=set)
    """Failures this check must report."""
    baseline: set[Key] = field(default_factory=set)
    """Failures recorded as seen without a page (first check of a source, ended before the window)."""
    late: set[Key] = field(default_factory=set)
    """Failures first in view after their source's first check that ended before that check's window:
    old news it would have recorded as seen, had they been in view then (a raised limit, a page cut)."""
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
        self.db, self.persistent = open_state(self.path, warn, clock, self.interrupted)

    # -- opening -------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The database file, or None when running without persistence."""
        return self.directory / FILE_NAME if self.directory is not None else None

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
        with immediate(self.db):
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

    # -- links read once (a terminal execution's logs) ------------------------------------

    def links(self, source: str) -> dict[str, dict[str, Any]]:
        """The links remembered for the items of a source (what their logs named), by id."""
        out: dict[str, dict[str, Any]] = {}
        for id_, blob in self.db.execute("SELECT id, links FROM links WHERE scope=? AND source=?",
                                         (self.scope, source)):
            try:
                value = orjson.loads(blob)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                out[id_] = value
        return out

    def save_links(self, source: str, links: Mapping[str, Mapping[str, Any]]) -> None:
        """Remember what the items of a source are part of (read from logs that are not read again)."""
        if not links:
            return
        now = self.clock()
        with immediate(self.db):
            for id_, value in links.items():
                self.db.execute("INSERT OR REPLACE INTO links (scope, source, id, links, saved_at) VALUES (?,?,?,?,?)",
                                (self.scope, source, id_, orjson.dumps(dict(value)), now))

    # -- Cloud Logging reads cut short: retried with backoff, by every process alike -------

    def log_retries(self, source: str) -> dict[str, tuple[int, float, str | None]]:
        """Ids of `source` whose log reads were cut short: (times, when the next may be, reason)."""
        return {id_: (int(attempts), float(next_at), reason) for id_, attempts, next_at, reason in self.db.execute(
            "SELECT id, attempts, next_at, reason FROM log_reads WHERE source=?", (source,))}

    def record_log_reads(self, source: str, read: Iterable[str], cut: dict[str, str],
                         delay: Callable[[int], float]) -> None:
        """Forget the ids read to the end; count one more cut read of the others, next try after `delay(times)`."""
        now = self.clock()
        with immediate(self.db):
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
        with immediate(self.db):
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
              first_window_s: float | None = None, complete: Iterable[str] = (),
              unfinished: Iterable[Key] = (), now: float | None = None) -> Claim:
        """Mark failures (key -> when it ended, epoch or None) reported to `consumer`, under the write lock.

        Two checks at once never claim the same failure: the read and the write are one transaction.
        With `first_window_s`, a source that has no baseline yet (the first check of this scope, or
        the first after the store was rebuilt) records failures that ended longer ago than the window
        as seen without paging them; the baseline is taken once the source answered in full (`complete`).
        A failure that comes into view only later but ended longer than the window before its source's
        baseline was taken is old news the same way (`late`): raising `completed_limit` pages no history.
        A failure in `unfinished` has only its creation for an end: it is never late (a run created
        before the first check that crashed long after it is news).
        `now` is the caller's time of the check (the store's clock when not given).
        """
        now = self.clock() if now is None else now
        claim = Claim()
        unfinished = set(unfinished)
        with immediate(self.db):
            told = self._told(consumer)
            based = dict(self.db.execute(
                "SELECT source, taken_at FROM baseline WHERE consumer=? AND scope=?", (consumer, self.scope)))
            for key, ended in failures.items():
                source, id_ = key
                if key in told:  # still in view: keep it from being pruned and paged again
                    self.db.execute("UPDATE reported SET last_seen=? WHERE consumer=? AND scope=? AND source=?"
                                    " AND id=?", (now, consumer, self.scope, source, id_))
                    continue
                self.db.execute("INSERT INTO reported (consumer, scope, source, id, first_reported, last_seen)"
                                " VALUES (?,?,?,?,?,?)", (consumer, self.scope, source, id_, now, now))
                claim.inserted.append(key)
                since = based.get(source, now)  # when the source's first check looked (this one if none has)
                if ended is None or first_window_s is None or since - ended <= first_window_s:
                    claim.new.add(key)
                elif source not in based:
                    claim.baseline.add(key)
                else:
                    (claim.new if key in unfinished else claim.late).add(key)
            if first_window_s is not None:
                for source in sorted(set(complete) - set(based)):
                    self.db.execute("INSERT INTO baseline (consumer, scope, source, taken_at, last_seen)"
                                    " VALUES (?,?,?,?,?)", (consumer, self.scope, source, now, now))
                    claim.marked.append(source)
                self.db.execute("UPDATE baseline SET last_seen=? WHERE consumer=? AND scope=?",
                                (now, consumer, self.scope))
        return claim

    def release(self, claim: Claim, consumer: str = "check") -> None:
        """Give a claim back (its report was not delivered): the next check reports those failures."""
        with immediate(self.db):
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
        with immediate(self.db):
            gone = self.db.execute("DELETE FROM terminal WHERE first_seen < ?", (cutoff,)).rowcount
            gone += self.db.execute("DELETE FROM reported WHERE last_seen < ?", (cutoff,)).rowcount
            gone += self.db.execute("DELETE FROM log_reads WHERE next_at < ?", (cutoff,)).rowcount
            gone += self.db.execute("DELETE FROM links WHERE saved_at < ?", (cutoff,)).rowcount
            # a scope unused for the retention starts again with a first check
            self.db.execute("DELETE FROM baseline WHERE last_seen < ?", (cutoff,))
        return int(gone)


def remembered_rows(directory: Path, scope: str) -> dict[str, list[Row]]:
    """The last good rows of each source of `scope`, read without creating or changing anything (for
    shell completion): {} when there is no state file or it cannot be read."""
    from urllib.parse import quote

    path = directory / FILE_NAME
    try:
        if not path.is_file():
            return {}
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=0.2)
        try:
            found = db.execute("SELECT source, rows FROM last_good WHERE scope=?", (scope,)).fetchall()
        finally:
            db.close()
    except (sqlite3.Error, OSError):
        return {}
    out: dict[str, list[Row]] = {}
    for source, blob in found:
        try:
            stored = orjson.loads(blob)
        except orjson.JSONDecodeError:
            continue
        if isinstance(stored, list):
            out[source] = [_every_key(r) for r in stored if isinstance(r, dict) and isinstance(r.get("id"), str)]
    return out


def _every_key(stored: dict[str, Any]) -> Row:
    """A remembered row with exactly the row keys of this version (one saved by an older arrctl lacks
    `category` and `links`): absent values null, `links` and `extra` objects."""
    row = {key: stored.get(key) for key in ROW_KEYS}
    for key in ("links", "extra"):
        if not isinstance(row[key], dict):
            row[key] = {}
    return row  # type: ignore[return-value]


