"""One function decides: which candidate is the root error, and whether the log failed at all.

- The specific cause beats the generic wrapper that reports it (scores by specificity).
- Among equals, the first: later errors of one incident are its consequences (other ranks'
  watchdog timeouts after one rank died, api_core re-raising a gRPC error) — unless the first was
  retried, which lowered its score.
- The platform's outcome, when the caller knows it, is believed: a SUCCEEDED run never gets an
  error as its message; a FAILED one gets the best candidate there is.
- Without an outcome (a log given on a file), the log must show a failure: an error after the
  last statement of success, strong enough; teardown after success is not a failure.
"""

from __future__ import annotations

import enum
import re

from arrctl.extract.rules import WORDY_STATUSES, Kind, cause_in, class_category, http_category
from arrctl.extract.scan import Candidate

EVIDENCE = (Kind.CAUSE, Kind.ERROR, Kind.WRAPPER, Kind.FAILED)
# Without an outcome, how strong a line must be to call the log failed.
CONCLUSIVE = {Kind.CAUSE: 1.5, Kind.ERROR: 1.5, Kind.WRAPPER: 0.5, Kind.FAILED: 0.5}
AFTER_SUCCESS = 2.5


class Outcome(enum.Enum):
    """What the platform says of the run the log belongs to."""

    FAILED = "failed"
    SUCCEEDED = "succeeded"


def choose(candidates: list[Candidate], outcome: Outcome | None) -> Candidate | None:
    """The root error of a failed log, or None when the log shows no failure."""
    if outcome is Outcome.SUCCEEDED:
        return None
    evidence = [c for c in candidates if c.kind in EVIDENCE]
    if outcome is None:
        success = max((c.line for c in candidates if c.kind is Kind.SUCCESS), default=-1)
        if any(c.line > success and c.kind is Kind.FAILED for c in candidates):
            success = -1  # a part succeeded, then the run said it failed: all errors count
        summary = max((c.line for c in candidates if c.kind is Kind.SUMMARY), default=None)
        if summary is not None:
            # The launch wrapper's summary ends its run: what follows is teardown.
            evidence = [c for c in evidence if c.line < summary or _fatal_marker(c)]
        # After the run said it ended well, errors are teardown; before, they were recovered.
        evidence = [c for c in evidence if c.line > success]
        if success >= 0:
            # what follows a run's own "done" is its teardown, unless it names a cause
            evidence = [c for c in evidence if c.kind is Kind.FAILED or c.score >= AFTER_SUCCESS]
        # One line strong enough shows the run failed; then any line may be its root cause
        # (an INFO line relaying a pod's error before "Marking task as FAILED").
        if not any(c.score >= CONCLUSIVE[c.kind] for c in evidence):
            return None
        evidence = [c for c in evidence if c.score > 0]
    if not evidence:
        return None
    return max(evidence, key=lambda c: (c.score, -c.line))


def _fatal_marker(c: Candidate) -> bool:
    return c.kind is Kind.WRAPPER and c.rule is not None and c.rule.fatal


def conclusive(c: Candidate) -> bool:
    """Whether a candidate alone shows that a live run is failing."""
    return c.kind in CONCLUSIVE and c.score >= CONCLUSIVE[c.kind]


def success_marker(candidates: list[Candidate]) -> Candidate | None:
    """The launch wrapper's last `Runs: N` summary, if any."""
    return next((c for c in reversed(candidates) if c.kind is Kind.SUMMARY), None)


# (a module's path shows a class whatever its name ends with: `distributed.scheduler.KilledWorker: `)
_CLASS = re.compile(r"^(?:(?:[A-Za-z_]\w*\.)*(?P<cls>[A-Za-z_]\w*(?:Error|Exception))|(?:[a-z_]\w*\.)+(?P<qualified>[A-Z]\w*)): ")
# a wrapper that names the exception it failed with (Prefect's `Task run failed with exception ValueError()`)
_FAILED_WITH = re.compile(r"\bfailed with (?:an? )?exception:? (?:[\w.]+\.)?(?P<cls>[A-Z]\w*(?:Error|Exception))\b")
# an exception named inside a message: `Run 6q4aki1t errored: ValueError('too many values')`
_CLASS_INSIDE = re.compile(r"\b(?P<cls>[A-Z]\w*(?:Error|Exception))(?:\(|: )")


GENERIC = frozenset({"generic.error", "pytest.failed", "level.error", "wandb.error", "python.exception",
                     "log.last_words", "wrapper.preceding", "chain.caused_by", "gcloud.error", "wandb.docker"})


_STATUS_PREFIX = re.compile(r"^\w+: (?:\d{3} )?")


# what shows a run ended by its exit: the words of a code, a signal, a kill (`exit code 137`,
# `Negsignal.SIGKILL`, `aborted by an interrupt signal`, `AlgorithmError`), read with the message's
# bracketed fields and words with digits (run ids, dates, pids) left out; a statement without any
# (`[1598264257255545/segfault/2 (pid 19077)] Task failed.`) says no more than unknown
_EXIT_SHOWN = re.compile(r"(?i)\bSIG[A-Z]{2,}|\bsignal\b|\bkill|\binterrupt|\bexit|\breturn code\b|\bcrash|\bterminated\b|"
                         r"\bnon-?zero\b|\babort|(?-i:[a-z](?:Error|Exception)\b)")
_IDS = re.compile(r"\[[^\]]*\]|\b[\w-]*\d[\w.:-]*")
_OUTCOME_ONLY = frozenset({"exit.code", "orchestrator.failed"})


def category(best: Candidate, message: str) -> str:
    """The failure category of the chosen candidate: its rule's, else what its words name."""
    found = _category(best, message)
    if found == "exit" and best.rule is not None and best.rule.name in _OUTCOME_ONLY \
            and not _EXIT_SHOWN.search(_IDS.sub(" ", message)):
        return "unknown"
    return found


def _category(best: Candidate, message: str) -> str:
    found = best.category
    if best.rule is not None and best.rule.name in WORDY_STATUSES:
        cause = cause_in(_STATUS_PREFIX.sub("", message))
        if cause is not None and cause.name != best.rule.name and cause.category:
            return cause.category
    if found == "exit" and best.kind is Kind.WRAPPER:  # `Task run failed with exception ValueError() - ...`
        named = _FAILED_WITH.search(message)
        from_class = class_category(named.group("cls")) if named else None
        if from_class not in (None, "exit", "unknown"):
            return from_class
    generic = best.rule is None or best.rule.name in GENERIC
    if generic or found in (None, "unknown"):
        cause = cause_in(message)  # `failed to calculate checksum ...: "/x": not found`
        if cause is not None and cause.category:
            return cause.category
        cls = _CLASS.match(message) or _CLASS.match(best.text) or _CLASS_INSIDE.search(message)
        from_class = class_category(next(name for name in cls.groups() if name)) if cls else None
        if from_class not in (None, "code", "unknown") or found in (None, "unknown"):
            found = http_category(message) or from_class or found
        if found in (None, "unknown"):
            found = _said_category(message) or found
    return found or "unknown"


# The plainest words for a kind, for an error no rule and no class names (`(gcloud.run.services.describe)
# Cannot find service [x]`, `Version 3.6 with arch x64 not found`): read only when nothing else spoke.
_SAID = (
    (re.compile(r"(?i)\b(?:not found|cannot find|can't find|could not find|couldn't find|unable to find|"
                r"no such|does not exist|doesn't exist)\b"), "not_found"),
    (re.compile(r"(?i)\b(?:timed out|timeout)\b"), "timeout"),
    (re.compile(r"(?i)\b(?:permission denied|forbidden|not authori[sz]ed|access denied)\b"), "permission"),
    # (Nextflow's `Process `x (3)` terminated with an error exit status (null)`)
    (re.compile(r"(?i)\bexit (?:status|code)\s*[:=]?\s*(?:-?\d+|\(null\))|\bexited with (?:exit )?(?:code |status )?-?\d"), "exit"),
)


def _said_category(message: str) -> str | None:
    return next((category for words, category in _SAID if words.search(message)), None)
