"""The root error (or success summary) of a run, from its log lines.

`ingest` turns text or Cloud Logging entries into normalised lines, `scan` finds candidates
(rule-labelled lines and the exceptions of traceback blocks), `rules` labels them, `score`
decides, `gcp` prints Google errors in one line each. Pure functions throughout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from arrctl.extract import gcp
from arrctl.extract.ingest import (
    EntryLines, drop_console_filler, lines_from_entries, normalise, split_text, unflatten,
)
from arrctl.extract.rules import RULES, RULES_BY_NAME, Kind, Rule, cause_in, label
from arrctl.model import CATEGORIES
from arrctl.extract.scan import Candidate, Lines, labelled_line, scan, short_class_path
from arrctl.extract.score import Outcome, category, choose, conclusive, success_marker
from arrctl.sanitize import one_line, redact_lines, safe_line

CONTEXT_BEFORE = 20
CONTEXT_AFTER = 80
SUCCESS_CONTEXT = 5
CONTEXT_LINE_LIMIT = 2000
MESSAGE_LIMIT = 400
_REQUEST_ID = re.compile(r"\s*\(Request ID: [^)]{0,120}\)")
_INLINE_EXCEPTION = re.compile(r"(?<![\w.])(?:(?:[a-z_]\w*\.)+[A-Z]\w*|[A-Z]\w*(?:Error|Exception|Exit|Failure)): (?:(?!\bFile \").)+")


@dataclass(frozen=True)
class Analysis:
    """What a log says: the verdict, the one-line reason, its category, the rule and line."""

    verdict: str
    message: str | None
    rule: str | None
    line: int | None
    jobs: int | None
    context: list[str] = field(default_factory=list)
    category: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of `arrctl explain --json` (keys fixed by SPEC)."""
        return {
            "verdict": self.verdict, "message": self.message, "category": self.category,
            "rule": self.rule, "line": self.line, "jobs": self.jobs, "context": list(self.context),
        }


UNKNOWN = Analysis("unknown", None, None, None, None, [])


def _log(lines: Sequence[str]) -> Lines:
    levels = getattr(lines, "severities", None)
    flat = drop_console_filler(unflatten(lines))
    if len(flat) != len(lines):
        levels = None
    return Lines(flat, levels)


def analyze(lines: Sequence[str], outcome: Outcome | str | None = None) -> Analysis:
    """The verdict of a whole log: failed (with the root error), succeeded, or unknown.

    `outcome` is what the platform says of the run ("failed", "succeeded" or None when unknown).
    """
    if isinstance(outcome, str):
        outcome = Outcome(outcome)
    log = _log(lines)
    candidates = scan(log)
    best = choose(candidates, outcome)
    if best is not None:
        return _failed(log, best)
    summary = success_marker(candidates)
    if summary is not None and summary.match is not None:
        jobs = int(summary.match.group("jobs"))
        i = summary.line
        context = _context(log.raw, max(0, i - SUCCESS_CONTEXT), i + SUCCESS_CONTEXT + 1)
        noun = "job" if jobs == 1 else "jobs"
        return Analysis("succeeded", f"Completed: {jobs} {noun}", "wrapper.summary", i + 1, jobs,
                        context)
    if outcome is Outcome.SUCCEEDED or any(c.kind is Kind.SUCCESS for c in candidates):
        marker = next((c for c in reversed(candidates) if c.kind is Kind.SUCCESS), None)
        if marker is None:
            return Analysis("succeeded", None, None, None, None, [])
        i = marker.line
        context = _context(log.raw, max(0, i - SUCCESS_CONTEXT), i + SUCCESS_CONTEXT + 1)
        return Analysis("succeeded", None, marker.rule.name if marker.rule else None, i + 1, None,
                        context)
    return UNKNOWN


def clear_caches() -> None:
    """Forget what the line caches hold (a benchmark's runs each start cold)."""
    for cached in (normalise, label, cause_in, labelled_line):
        cached.cache_clear()


def categorize(message: str) -> str:
    """The category of a one-line error (a row's message, an API's error text)."""
    return analyze([message], Outcome.FAILED).category or "unknown"


def first_fatal(lines: Sequence[str]) -> Analysis | None:
    """The first line of a fatal rule in a live log, as a failed Analysis; None if none yet.

    A wrapper's bailout marker is fatal, but its cause is what came before it."""
    log = _log(lines)
    candidates = scan(log)
    for c in candidates:
        if c.rule is not None and c.rule.fatal and c.kind in (Kind.CAUSE, Kind.WRAPPER) \
                and conclusive(c):
            if c.kind is Kind.WRAPPER:
                before = [d for d in candidates if d.line < c.line]
                c = choose(before, Outcome.FAILED) or c
            return _failed(log, c)
    return None


def _message(log: Lines, best: Candidate) -> str:
    """The one-line message of the chosen candidate: redacted, printable, at most 300 chars."""
    text: str | None = None
    if best.rule is not None and best.rule.gcp:
        # An exception's record may be on its continuation lines (gRPC's status block).
        last = best.block_end if best.block_end is not None else best.line
        for i in range(best.line, min(last, best.line + 8) + 1):
            text = gcp.record(log, i)
            if text:
                break
        own = log.body(best.line).strip()
        if text and text.rstrip().endswith(":") and best.text.startswith(own) and len(best.text) > len(own):
            text += best.text[len(own):]  # the detail its colon introduced, joined from the next line
    if text is None:
        text = gcp.condition_record(log, best.line)
    if text is None and best.match is not None and "msg" in best.match.re.groupindex \
            and best.match.group("msg"):
        text = best.match.group("msg")
    if text is None:
        text = best.text
        if best.match is not None and best.match.string == text and best.match.start() > MESSAGE_LIMIT // 2 \
                and len(text) - best.match.start() < MESSAGE_LIMIT // 2 and not (best.rule and best.rule.gcp):
            # what the rule found is far into a long line (a launcher's argv, then "exits with
            # return code = -9"): keep the line's start and the part from there on
            text = text[:MESSAGE_LIMIT // 4].rstrip() + " … " + text[max(0, best.match.start() - 40):]
        text = short_class_path(text)  # `com.google.cloud.ai.platform.common.errors.X: ` → `X: `
    if "Traceback (most recent call last):" in text or text.startswith('File "'):  # a traceback flattened into one line
        raised: re.Match[str] | None = None
        for raised in _INLINE_EXCEPTION.finditer(text):
            pass
        if raised is not None:
            text = raised.group(0)
    text = gcp.tidy(text)
    if not text and best.rule is not None and best.rule.name == "wrapper.bailout":
        text = "FATAL ERROR DETECTED"
    found = best.match.group(0) if best.match is not None and best.match.group(0).strip() else None
    return one_line(_shorten(one_line(text, limit=100_000, spaces=True), found), limit=MESSAGE_LIMIT, spaces=True)


def _shorten(text: str, found: str | None = None) -> str:
    """Without request ids; an error chain longer than MESSAGE_LIMIT keeps its start and end
    (`filestream: api: failed sending: Post ...: x509: certificate signed by unknown authority`)
    names its root last; and what the rule found, should that lie between them
    (`... had an error: 'operation-...': [ZONE_RESOURCE_POOL_EXHAUSTED] 'The zone ...`)."""
    text = _REQUEST_ID.sub("", text)
    if len(text) <= MESSAGE_LIMIT or text.count(": ") < 4:
        return text
    head = MESSAGE_LIMIT * 3 // 5
    tail = MESSAGE_LIMIT - head - 3
    at = text.find(found) if found and len(found) < MESSAGE_LIMIT // 4 else -1
    if at >= 0 and at + len(found or "") > head and at < len(text) - tail:  # not whole in what is kept
        head = min(MESSAGE_LIMIT * 2 // 5, at)
        start = max(head, at - 20)
        return text[:head].rstrip() + " … " + text[start:start + MESSAGE_LIMIT - head - 3].strip()
    return text[:head].rstrip() + " … " + text[-tail:].lstrip()


def _failed(log: Lines, best: Candidate) -> Analysis:
    i = best.line
    message = _message(log, best)
    context = _context(log.raw, max(0, i - CONTEXT_BEFORE), i + CONTEXT_AFTER + 1)
    rule = best.rule.name if best.rule is not None else "level.error"
    found = category(best, message)
    if found == "unknown":
        found = _wrapper_category(log, best) or found
    if found == "network" and _in_distributed_setup(log, best):
        # a connection torch.distributed made (its TCPStore, gloo, c10d) failed: the rendezvous
        # of the ranks, which is where an on-call engineer looks
        found = "distributed"
    return Analysis("failed", message, rule, i + 1, None, context, found)


WRAPPER_REACH = 3


def _wrapper_category(log: Lines, best: Candidate) -> str | None:
    """An error in words no rule names, reported by a wrapper of a known kind just after it (pack's
    `ERROR: failed to export: ... write too long`, then `ERROR: failed to build: executing lifecycle:
    failed with status code: 62`): the wrapper's category, when it says more than an exit."""
    end = best.block_end if best.block_end is not None else best.line
    seen = 0
    for j in range(end + 1, len(log)):
        text = log.body(j).strip()
        if not text:
            continue
        seen += 1
        if seen > WRAPPER_REACH:
            break
        labelled = label(text)
        # (a wrapper of the step, not a run's verdict: Maven's `BUILD FAILURE` ends any plugin's failure)
        if labelled is not None and labelled[0].kind is Kind.WRAPPER:
            if labelled[0].category not in (None, "exit", "unknown"):
                return labelled[0].category
    return None


_DISTRIBUTED = re.compile(r"torch/distributed/|\bc10d\b|\binit_process_group\b|ProcessGroupGloo|\bTCPStore\b")
DISTRIBUTED_REACH = 40


def _in_distributed_setup(log: Lines, best: Candidate) -> bool:
    """Whether the lines around the chosen one (its traceback) belong to torch.distributed."""
    end = best.block_end if best.block_end is not None else best.line
    return any(_DISTRIBUTED.search(log.raw[j][:8192])
               for j in range(max(0, best.line - DISTRIBUTED_REACH), min(len(log), end + 3)))


def _context(lines: Sequence[str], start: int, end: int) -> list[str]:
    """lines[start:end], each redacted and printable; private-key blocks hidden line by line."""
    end = min(end, len(lines))
    if "PRIVATE KEY-----" in "\n".join(lines[:end]):
        # A key block may begin before the window: redact from the top to know where it is.
        window = redact_lines([line[:CONTEXT_LINE_LIMIT] for line in lines[:end]])[start:end]
    else:
        window = [line[:CONTEXT_LINE_LIMIT] for line in lines[start:end]]
    return [safe_line(line) for line in window]


__all__ = [
    "Analysis", "CATEGORIES", "categorize", "clear_caches", "EntryLines", "Outcome", "RULES", "RULES_BY_NAME", "Rule", "analyze",
    "first_fatal", "lines_from_entries", "split_text",
]
