"""The root error of newly terminal items, read once ever from their own logs in Cloud Logging.

Every source whose items log to Cloud Logging (runner executions, Vertex AI custom jobs, Cloud
Build builds) explains the items it sees terminal for the first time the same way, described by
its `Reader` (how its filter is built, how entries are grouped per item, how an item's entries
are judged and concluded):
- at most ONE bounded query per source and refresh, every newly terminal item OR-ed in it, and
  none in steady state: what an item's logs said is kept in the state store (facts), and items
  whose facts are stored (`ctx.known_terminal`) are never read again, in any process;
- until its logs are read (a failed or cut-short read, logs that explain nothing yet) a row shows
  the platform's own words and is marked `extra.logs_unread: true`; such a row is neither
  remembered nor paged, so a later refresh reads those logs again;
- a read cut short (an error, a 429, the page cap, the deadline) keeps the rows: they are sent
  complete first, then the source reports `logs: <reason>`; no fact is sent for what the read did
  not reach, and the read is retried with backoff (the store keeps the count for every process,
  `sources/logs.py`). After `logs.MAX_TRIES` cut reads an item is concluded with what the platform
  itself said, so that `check` still reports it;
- a 429 anywhere in the project holds every read (`ctx.logging_hold_s`), the quota being shared.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from arrctl.model import Row, TerminalFact, apply_facts, by_id, epoch, iso_z
from arrctl.sources import Emitter, FetchContext, SourceError, logs

Entry = dict[str, Any]
Fact = TerminalFact
LOG_SETTLE_S = 300.0  # logs arrive late: an item whose logs say nothing is re-read until then
RETENTION_S = 30 * 86400.0  # the _Default bucket keeps logs 30 days: the bound when nothing is known
LOG_RESERVE_S = 3.0  # of the deadline kept from listing for the one log read...
LIST_SHARE = 0.6  # ...but never more than what leaves the listing this share (as the runner's REGION_SHARE)


@dataclass(frozen=True)
class Reader:
    """How one source's terminal items are explained from their logs."""

    source: str
    noun: str
    """What its items are called in a problem line: `executions`, `jobs`, `builds`."""
    wants: Callable[[Row], bool]
    """Whether a terminal row's logs may say why it ended so (FAILED, ...)."""
    log_filter: Callable[[FetchContext, list[Row], _dt.datetime], str]
    """The bounded filter of all these rows' logs (one query)."""
    group: Callable[[list[Entry]], dict[str, list[Entry]]]
    """Entries per item id."""
    judge: Callable[[Row, list[Entry]], Any]
    """The arrctl.extract.Analysis of one item's entries."""
    conclude: Callable[[Row, Any], Fact]
    """The terminal fact of one item from its analysis."""
    words: Callable[[Row], str | None]
    """What the platform itself said of the row (shown while its logs are unread)."""
    prefix: str = ""
    """Put before the platform's words while unread (the runner's `Cloud Run: `)."""
    links: Callable[[list[Entry]], dict[str, Any]] | None = None
    """What an item's logs say it is linked to (the Vertex jobs and queue items an execution
    launched, arrctl.links), kept with its fact."""
    settle_s: float = LOG_SETTLE_S
    read: Callable[[FetchContext, Emitter, list[Row], float, _dt.datetime, Callable[[], float]],
                   logs.LogRead] | None = None
    """How these rows' logs are read when not all of them
    are in Cloud Logging (builds whose log is in a bucket), given the rows, the deadline, now and
    the clock; default: one query of `log_filter`."""


def needs_logs(reader: Reader, rows: list[Row], known_terminal: frozenset[str]) -> list[Row]:
    """Rows whose logs must be read: terminal with a readable outcome and not yet remembered."""
    return [r for r in rows if reader.wants(r) and r["id"] not in known_terminal]


def provisional(reader: Reader, rows: list[Row], unexplained: set[str]) -> list[Row]:
    """Rows whose logs are not read yet are marked `extra.logs_unread` (so that they are neither
    remembered nor paged) and show the platform's words, when it has any, marked as its words."""
    out: list[Row] = []
    for row in rows:
        if row["id"] in unexplained:
            words = reader.words(row)
            row = {**row, "message": reader.prefix + words if words else row["message"],  # type: ignore[misc]
                   "extra": {**row["extra"], "logs_unread": True}}
        out.append(row)
    return out


def unread_marked(reader: Reader, ctx: FetchContext, rows: list[Row]) -> list[Row]:
    """A part's rows (a region's, a location's) as sent before any log is read: those whose logs
    must be read are marked unread (`provisional`), so that the rows of a worker cut off before its
    read are neither remembered nor paged. `extra.logs_unread` is the one mark of "not explained"."""
    return provisional(reader, rows, {r["id"] for r in needs_logs(reader, rows, ctx.known_terminal)})


def fact(row: Row, analysis: Any, message: str | None) -> Fact:
    """The terminal fact of a row: what its logs said (verdict, rule, line) and the message shown."""
    return {"source": row["source"], "id": row["id"], "status": row["status"], "verdict": analysis.verdict,
            "message": message, "rule": analysis.rule, "jobs": analysis.jobs, "line": analysis.line,
            "finished": row["finished"],
            # the category of the analysis goes with its own message only (else it is derived from the words)
            "category": analysis.category if message is not None and message == analysis.message else None}


def is_specific(analysis: Any) -> bool:
    """Whether an analysis names a root error, not only that something failed (a wrapper's line
    such as `build step 0 ... failed` or `Container called exit(1).`): decided by its rule's kind."""
    from arrctl.extract import RULES_BY_NAME
    from arrctl.extract.rules import Kind

    if analysis.verdict != "failed" or not analysis.message:
        return False
    rule = RULES_BY_NAME.get(analysis.rule or "")
    return rule is None or rule.kind not in (Kind.WRAPPER, Kind.FAILED)


def first_failed(groups: dict[str, list[Entry]], order: Callable[[str, list[Entry]], Any] | None = None,
                 outcome: str | None = None) -> tuple[str, Any] | None:
    """(name, Analysis) of the first group, in `order` (default: as given), whose own log failed.

    Groups are the parts of one item that log apart (a task, a replica). With `outcome` None only a
    conclusive failure counts (a healthy sibling's warnings are not the cause).
    """
    from arrctl.extract import analyze, lines_from_entries

    names = list(groups)
    if order is not None:
        names.sort(key=lambda name: order(name, groups[name]))
    for name in names:
        analysis = analyze(lines_from_entries(groups[name]), outcome)
        if analysis.verdict == "failed":
            return name, analysis
    return None


def last_entry_at(entries: list[Entry]) -> float:
    """Epoch seconds of the newest entry (0 when none has a readable timestamp)."""
    return max((epoch(e.get("timestamp")) or 0.0 for e in entries), default=0.0)


def oldest_created(rows: Sequence[Mapping[str, Any]], now: _dt.datetime) -> str:
    """The lower time bound of a read: the oldest creation among the rows (logs come after it)."""
    created = [r["created"] or "" for r in rows if epoch(r["created"]) is not None]
    if created:
        return min(created, key=lambda t: epoch(t) or 0.0)
    return iso_z(now - _dt.timedelta(seconds=RETENTION_S)) or ""


def newest_end(rows: list[Row], grace_s: float) -> str | None:
    """The upper time bound of a read: the newest end among the rows, plus `grace_s` for the last
    lines written as the item stopped; None when one of them has no end (no bound)."""
    ends = [epoch(r["finished"]) for r in rows]
    if not ends or any(e is None for e in ends):
        return None
    latest = max(e for e in ends if e is not None)
    return iso_z(_dt.datetime.fromtimestamp(latest + grace_s, _dt.timezone.utc))


def listing_budget(deadline_s: float) -> float:
    """Seconds a source may list for before its one log read (vertex, builds). A short deadline
    (`--deadline 4`) still lists: a read the listing left no time for is cut and tried again."""
    return max(1.0, deadline_s * LIST_SHARE, deadline_s - 0.5 - LOG_RESERVE_S)


def settled(row: Row, now: _dt.datetime, settle_s: float = LOG_SETTLE_S) -> bool:
    """Whether an item finished long enough ago for its logs to be complete."""
    finished = epoch(row["finished"])
    return finished is not None and now.timestamp() - finished >= settle_s


def explain_rows(reader: Reader, rows: list[Row], groups: dict[str, list[Entry]], complete: bool,
                 now: _dt.datetime) -> list[Fact]:
    """Facts for the items whose logs are conclusive, or complete and settled (pure, given the entries)."""
    facts = []
    for row in rows:
        analysis = reader.judge(row, groups.get(row["id"], []))
        if analysis.verdict != "unknown" or (complete and settled(row, now, reader.settle_s)):
            found = reader.conclude(row, analysis)
            if reader.links is not None:
                found["links"] = reader.links(groups.get(row["id"], []))
            facts.append(found)
    return facts


def conclude_unread(reader: Reader, row: Row, analysis: Any, reason: str | None) -> Fact:
    """The fact of an item whose logs could not be read after logs.MAX_TRIES: the platform's words."""
    found = reader.conclude(row, analysis)
    if not found["message"]:
        found["message"] = f"{row['raw_status'] or row['status']} (its logs could not be read: {reason or 'unknown'})"
    return found


def due_for_logs(rows: list[Row], retry: dict[str, tuple[int, float, str | None]]) -> tuple[list[Row], list[Row]]:
    """(rows whose logs may be read now, rows still waiting after a cut read) (pure)."""
    due = [r for r in rows if retry.get(r["id"], (0, 0.0, None))[1] <= 0]
    return due, [r for r in rows if r not in due]


def log_read_outcome(reader: Reader, due: list[Row], groups: dict[str, list[Entry]], read: logs.LogRead,
                     retry: dict[str, tuple[int, float, str | None]], now: _dt.datetime
                     ) -> tuple[list[Fact], dict[str, Any]]:
    """The facts one read proves, and its report for the store's backoff (pure).

    A finished read explains what it can; a cut one too, and the items it leaves unexplained are
    retried later, unless this was their last try: then they are concluded with the platform's words.
    """
    if read.complete:
        facts = explain_rows(reader, due, groups, True, now)
        return facts, {"called": read.calls > 0, "rate_limited": False, "read": [r["id"] for r in due], "cut": {}}
    # a cut read proves nothing about items it found no entries of (the platform's outcome alone is
    # not an explanation: it is what the retry, or the last try, falls back on), unless it knows
    # which items it may have missed: the others were read whole
    whole = [] if read.unreached is None else [r for r in due if r["id"] not in read.unreached]
    facts = explain_rows(reader, whole, groups, True, now)
    facts += explain_rows(reader, [r for r in due if groups.get(r["id"]) and r not in whole], groups, False, now)
    explained = {f["id"] for f in facts}
    cut: dict[str, str] = {}
    for row in due:
        if row["id"] in explained:
            continue
        if retry.get(row["id"], (0, 0.0, None))[0] + 1 >= logs.MAX_TRIES:
            facts.append(conclude_unread(reader, row, reader.judge(row, groups.get(row["id"], [])), read.reason))
            explained.add(row["id"])
        else:
            cut[row["id"]] = read.reason or (read.cut.value if read.cut else "cut short")
    return facts, {"called": read.calls > 0, "rate_limited": read.cut is logs.Cut.RATE_LIMITED,
                   "read": sorted(explained), "cut": cut}


def explain_new(reader: Reader, ctx: FetchContext, emit: Emitter, rows: list[Row], deadline_at: float,
                now: _dt.datetime, clock: Callable[[], float] = time.monotonic) -> list[str]:
    """Send the rows, then read the logs of the newly terminal ones (one query) and send what they
    explain; return the problems to report (a hold, a cut read, reads waiting for their backoff)."""
    todo = needs_logs(reader, rows, ctx.known_terminal)
    unexplained = {r["id"] for r in todo}
    emit.rows(provisional(reader, rows, unexplained))  # the complete set already, should the read be cut short
    problems: list[str] = []
    due, waiting = due_for_logs(todo, ctx.log_retry)
    if todo and ctx.logging_hold_s > 0:  # a 429 (ours or another process's): the project's quota is spent
        problems.append(f"logs: Cloud Logging reads held {ctx.logging_hold_s:.0f}s more after a 429 "
                        f"(rate limited); {len(todo)} {reader.noun} wait")
        return problems
    if due:
        if deadline_at - clock() < logs.MIN_CALL_S:  # listing took the time: a cut read, tried again later
            read = logs.LogRead(cut=logs.Cut.DEADLINE, reason="not started within the deadline")
        elif reader.read is not None:
            read = reader.read(ctx, emit, due, deadline_at, now, clock)
        else:
            read = logs.read_entries(ctx, emit, reader.log_filter(ctx, due, now), deadline_at=deadline_at,
                                     clock=clock)
        facts, report = log_read_outcome(reader, due, reader.group(read.entries), read, ctx.log_retry, now)
        emit.log_reads(report)
        if facts:
            emit.facts(facts)
            unexplained -= {f["id"] for f in facts}
            emit.rows(provisional(reader, apply_facts(rows, by_id(facts)), unexplained))
        if not read.complete:
            problems.append(f"logs: {read.reason}")
    if waiting:
        wait = min(ctx.log_retry[r["id"]][1] for r in waiting)
        reason = ctx.log_retry[waiting[0]["id"]][2] or "cut short"
        problems.append(f"logs of {len(waiting)} {reader.noun} not read yet ({reason}); next try in {wait:.0f}s")
    return problems


def raise_problems(problems: list[str]) -> None:
    """A fetch's problems as its one-line error, if any."""
    if problems:
        raise SourceError("; ".join(problems))


def labelled(analysis: Any, name: str) -> Any:
    """An analysis whose message names the part it came from (`workerpool0-0: ...`)."""
    if not name or not analysis.message:
        return analysis
    return replace(analysis, message=f"{name}: {analysis.message}")
