"""`arrctl logs ID|URL [-f]`: the log lines of one item, stern-like, followed until it ends.

The reading happens in a worker per poll (sources/itemlogs.py, through `Refresher.poll`); this
module keeps what was printed (`LogBook`: every entry once, in time order, whatever the polls
overlap), formats lines (a replica prefix, coloured per replica on a terminal) and concludes
with the item's root error when a followed item ends.

Cloud Logging delivers entries late and not in order, so each poll reads again from a little
before the newest entry seen (`LAG_S`) and drops what it already printed (by insertId). A poll
every `POLL_S` costs 12 of the project's ~60 reads a minute; a 429 holds every read of the
project for everyone (sources/logs.py), and following waits it out.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from arrctl.ids import Kind, Target
from arrctl.kinds import SourceState
from arrctl.model import TERMINAL_STATUSES, Row, epoch, iso_z

POLL_S = 5.0
LAG_S = 30.0  # entries may arrive this much later than their timestamp says
REPLICA_COLORS = ("cyan", "green", "magenta", "yellow", "blue", "red", "bright_cyan", "bright_green",
                  "bright_magenta", "bright_yellow", "bright_blue", "bright_red")
MAX_KEPT_ENTRIES = 100_000  # what a very long follow remembers for its final analysis
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds of `30s`, `5m`, `2h`, `3d`, `1h30m` or a plain number of seconds; ValueError otherwise."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION_PART.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value:
            raise ValueError(f"{text!r} is not a duration: expected e.g. 90s, 15m, 2h, 3d or 1h30m") from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds <= 0 or seconds > 400 * 86400:
        raise ValueError(f"{text!r} is not a duration between 1s and 400d")
    return seconds


@dataclass
class LogBook:
    """Every entry printed so far, once each, in time order; where the next read starts."""

    seen: set[str] = field(default_factory=set)
    entries: list[dict[str, Any]] = field(default_factory=list)
    newest: float | None = None

    def add(self, entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The entries not seen before, oldest first (entries without a time keep their place)."""
        fresh = [e for e in entries if e["insertId"] not in self.seen]
        fresh.sort(key=lambda e: epoch(e.get("timestamp")) or 0.0)
        for entry in fresh:
            self.seen.add(entry["insertId"])
            when = epoch(entry.get("timestamp"))
            if when is not None and (self.newest is None or when > self.newest):
                self.newest = when
        self.entries.extend(fresh)
        del self.entries[:-MAX_KEPT_ENTRIES]
        return fresh

    def cursor(self, lag_s: float = LAG_S) -> str | None:
        """The lower time bound of the next read: a little before the newest entry seen."""
        if self.newest is None:
            return None
        return iso_z(self.newest - lag_s)


class Palette:
    """One colour per replica, in the order replicas first appear (stern's way)."""

    def __init__(self, color: bool) -> None:
        self.color = color
        self.assigned: dict[str, str] = {}

    def prefix(self, replica: str) -> str:
        """`[replica] `, coloured when colour is on."""
        text = f"[{replica}] "
        if not self.color:
            return text
        import click

        colour = self.assigned.setdefault(replica, REPLICA_COLORS[len(self.assigned) % len(REPLICA_COLORS)])
        return click.style(text, fg=colour)


def replica_of(kind: Kind, entry: dict[str, Any], many_tasks: bool) -> str | None:
    """What a line is prefixed with: a Vertex replica always, a runner task when the execution has several."""
    if kind is Kind.VERTEX_JOB:
        return entry.get("replica") or None
    if kind is Kind.EXECUTION and many_tasks:
        task = entry.get("labels", {}).get("run.googleapis.com/task_index")
        return f"task-{task}" if task is not None else None
    return None


def render(kind: Kind, entries: list[dict[str, Any]], palette: Palette, many_tasks: bool = False) -> list[str]:
    """The printed lines of entries (pure): each entry's lines, safe to print, with its replica's prefix."""
    from arrctl.sanitize import safe_line

    out: list[str] = []
    for entry in entries:
        replica = replica_of(kind, entry, many_tasks)
        head = palette.prefix(replica) if replica else ""
        out.extend(head + safe_line(line) for line in entry.get("lines") or [""])
    return out


def as_log_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A slim entry as the judges read LogEntries (its lines joined into a textPayload, its replica a resource label)."""
    resource = {"labels": {"task_name": entry["replica"]}} if entry.get("replica") else {}
    return {"insertId": entry["insertId"], "timestamp": entry.get("timestamp"), "severity": entry.get("severity"),
            "labels": entry.get("labels") or {}, "resource": resource,
            "textPayload": "\n".join(entry.get("lines") or [])}


@dataclass(frozen=True)
class Conclusion:
    """How a followed item ended: the exit status and the one line that says why."""

    code: int
    line: str


_OUTCOMES = {"SUCCEEDED": "succeeded", "FAILED": "failed", "TIMEOUT": "failed"}


def analysis_of(kind: Kind, row: Row, entries: list[dict[str, Any]]) -> Any:
    """The extractor's analysis of what was read, by the judge of the item's own source (pure)."""
    logged = [as_log_entry(e) for e in entries]
    if kind is Kind.EXECUTION:
        from arrctl.sources import runner

        return runner.judge_attempts(row, logged)
    if kind is Kind.VERTEX_JOB:
        from arrctl.sources import vertex

        return vertex.judge(row, logged)
    if kind is Kind.BUILD:
        from arrctl.sources import builds

        return builds.judge_build(logged, _OUTCOMES.get(row["status"]))
    from arrctl.sources import wandb_logs

    return wandb_logs.analyse("\n".join(line for e in entries for line in e.get("lines") or []),
                              _OUTCOMES.get(row["status"]))


def conclude(kind: Kind, item: str, row: Row, entries: list[dict[str, Any]]) -> Conclusion:
    """The end of a followed item (pure): its status and root error (arrctl.extract), or success summary."""
    from arrctl.sanitize import one_line

    status = row["status"]
    analysis = analysis_of(kind, row, entries)
    failed = analysis.verdict == "failed" and analysis.message
    if kind is Kind.EXECUTION:
        from arrctl.sources import runner

        message = runner.conclude(row, analysis)["message"] or row.get("message")
    elif status in ("FAILED", "TIMEOUT") and failed:
        message = analysis.message
    else:
        message = row.get("message")
    category = (analysis.category if failed else None) or row.get("category")
    if status in ("FAILED", "TIMEOUT") and not category and message:
        from arrctl.extract import categorize

        category = categorize(message)
    text = f"{item} {status}" + (f": {one_line(message)}" if message else "")
    if status in ("FAILED", "TIMEOUT") and category:
        text += f" (category {category})"
    return Conclusion(0 if status == "SUCCEEDED" else 1, text)


def since_bound(since_s: float | None, now: float) -> str | None:
    """The lower time bound --since asks for (None: from the item's creation)."""
    return iso_z(now - since_s) if since_s is not None else None


class Follower:
    """One `arrctl logs` command: prints each poll's new lines, decides when it is over."""

    def __init__(self, target: Target, out: Any, warn: Callable[[str], None], *, follow: bool, tail: int | None,
                 color: bool, not_found: str | None = None) -> None:
        self.target = target
        self.kind = target.kinds[0]  # the kind it turned out to be, once found
        self.not_found = not_found or f"{target.id} not found"
        self.out = out
        self.warn = warn
        self.follow = follow
        self.tail = tail
        self.book = LogBook()
        self.palette = Palette(color)
        self.row: Row | None = None
        self.polls = 0
        self.tailed = tail is None  # --tail cuts the first batch of lines only
        self.ending = False  # the item ended: one more read for the entries that lag behind
        self.failed: str | None = None  # why the command must end with exit 1
        self.said: set[str] = set()
        self.done = False

    def say_once(self, message: str) -> None:
        """A warning on stderr, not repeated while the same thing keeps happening."""
        if message not in self.said:
            self.said.add(message)
            self.warn(message)

    def on_result(self, extra: dict[str, Any], result: Any) -> bool:
        """Take one poll's result; True when the command is over."""
        self.polls += 1
        if result.state != SourceState.OK or not result.results:
            reason = result.error or "no answer"
            if not self.follow or self.row is None:  # nothing to follow: say why and stop
                self.failed = f"could not read {self.target.id}: {reason}"
                return True
            self.say_once(f"{self.target.id}: {reason} (still following)")
            return False
        fact = result.results[0]
        if not fact["found"]:
            self.failed = self.not_found
            return True
        self.row = fact["row"]
        self.kind = Kind(fact.get("kind", self.kind.value))
        extra.update(kinds=[self.kind.value], region=self.row.get("region"), first=False)
        if fact.get("offset") is not None:  # a W&B console log is read on by byte offset
            extra["offset"] = fact["offset"]
        if fact.get("held_s"):
            if not self.follow:
                self.failed = (f"Cloud Logging reads are held {fact['held_s']:.0f}s more after a 429 "
                               "(rate limited); try again then")
                return True
            self.say_once("Cloud Logging reads held after a 429 (rate limited); following resumes when the hold ends")
        self.print(fact["entries"])
        if fact.get("cut"):
            incomplete = fact.get("cut_kind") not in ("pages",)
            note = f"logs of {self.target.id} not fully read: {fact['cut']}"
            if not self.follow:
                if incomplete:
                    self.failed = note
                else:
                    self.warn(note)
                return True
            self.say_once(note + " (still following)")
        else:
            extra["inside_key"] = bool(fact.get("inside_key"))  # a private key still being logged stays hidden
            if self.book.cursor() is not None:
                extra["since"] = self.book.cursor()
        if not self.follow:
            return True
        if self.row["status"] in TERMINAL_STATUSES:
            if self.ending:
                self.done = True
                return True
            self.ending = True
        return False

    def print(self, entries: list[dict[str, Any]]) -> None:
        """Print the new lines (only the last --tail of the first batch)."""
        fresh = self.book.add(entries)
        many = bool(self.row and (self.row.get("extra") or {}).get("task_count", 1) > 1)
        lines = render(self.kind, fresh, self.palette, many)
        if not self.tailed and fresh:
            self.tailed = True
            lines = lines[-self.tail:] if self.tail else []
        for line in lines:
            self.out.line(line)


def run_logs(app: Any, text: str, *, follow: bool, since_s: float | None, tail: int | None,
             deadline: float | None, poll_s: float) -> int:
    """The whole command; returns its exit status (errors leave through output.fail)."""
    import click

    from arrctl import explain
    from arrctl.ids import NotAnId, parse_target
    from arrctl.kinds import ExitStatus
    from arrctl.output import Output, config_errors, fail, say, signals_handled
    from arrctl.sources.itemlogs import fetch

    try:
        target = parse_target(text)
    except NotAnId as exc:
        raise click.UsageError(str(exc)) from None
    out = Output()
    with signals_handled() as receiver, config_errors(ExitStatus.USAGE):
        with app.session(deadline_s=deadline, receiver=receiver) as refresher:
            target = explain.scoped(refresher, target)
            config = refresher.config
            follower = Follower(target, out, app.warn, follow=follow, tail=tail, color=app.color,
                                not_found=explain.not_found(target, config))
            extra: dict[str, Any] = {"kinds": [k.value for k in target.kinds], "id": target.id,
                                     "region": target.region, "since": since_bound(since_s, time.time()),
                                     "first": True, "entity": target.entity, "wandb_project": target.wandb_project,
                                     "offset": 0}
            seconds = refresher.deadline("runner")
            refresher.poll({"logs": (fetch, extra)}, deadline=lambda: seconds, interval_s=poll_s,
                           until=math.inf, on_result=lambda _name, result: follower.on_result(extra, result))
    if follower.failed:
        fail(follower.failed, ExitStatus.ERROR)
    if follower.done and follower.row is not None:
        ending = conclude(follower.kind, target.id, follower.row, follower.book.entries)
        say(f"arrctl: {ending.line}")
        return ending.code
    return ExitStatus.OK


__all__ = ["Follower", "LogBook", "Palette", "conclude", "parse_duration", "render", "run_logs"]
