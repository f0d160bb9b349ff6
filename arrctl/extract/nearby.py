"""What the lines near a candidate add: the line a header announces, the tool's own words before
a wrapper that only says a step failed, a log's last words, the detail printed after an HTTP
error's first line (pure, over `Lines`)."""

from __future__ import annotations

import re

from arrctl.extract.ingest import MATCH_LIMIT
from arrctl.extract.lines import LEVEL_ADJUST, Candidate, Lines
from arrctl.extract.rules import FAILURE_WORDS, RULES_BY_NAME, SPECIFICITY, Kind, cause_in, label

PRECEDING_SCORE = 1.6  # the words just before a bare wrapper: more than it, less than a cause
LAST_WORDS_SCORE = 1.5  # the log ends saying something failed: enough to call it failed

DETAIL_FOLLOWS = re.compile(r"Client Error\.? \(Request ID: [^)]*\)$|\(Request ID: [^)]*\)$")
# Keras' `Exception encountered when calling Sequential.call().`: why, in one line below a blank
# one (then `Arguments received by ...`, which is not why)
ONE_LINE_FOLLOWS = re.compile(r"\bException encountered when calling .+\.$")
# pydantic's `1 validation error for ModelConfig`: the field (if any) and what is wrong with it below
VALIDATION_FOLLOWS = re.compile(r"\b\d+ validation errors? for [\w.]+$")
_LAYOUT = re.compile(r"^(?:-{3,}|={3,}|\s*\d+ \| .*|\s*>+ ?\[.*|Dockerfile(?:\.\w+)?:\d+|[\w.-]*Dockerfile:\d+|\[\s*\d+/\d+\].*"
                     r"|#\d+ \[.*|#\d+ (?:DONE|CACHED|ERROR).*|\s*\d+│.*|\s*at .+:\d+.*"
                     r"|\s*[\w.-]+:"  # a YAML mapping's key, its fields below it
                     r"|[\w ,'\[\]-]+\.{3,}(?:done|failed)?\.?"  # gcloud's progress (`Running execution.....failed.`)
                     r"|\s*Container \S+\s+(?:Error|Created|Started|Starting|Healthy|Waiting|Running|Stopped|Exited))$")  # compose's
LOOKBACK = 12
# (and `kubectl describe pod`'s `Exit Code:    137`, whose `Reason:  Error` above it says less)
_SIGNAL_NAMED = re.compile(r"\bsignal \d+\b|\bSIG[A-Z]{2,}\b|^\s*Exit Code:\s+\d+$")
# failure words said not to apply (SkyPilot's `Streaming logs... (Ctrl-C to exit log streaming; job
# will not be killed)`)
_NEGATED = re.compile(r"(?i)\b(?:will not|won't|would not|does not|doesn't|never) (?:be )?"
                      r"(?:killed|terminated|fail(?:ed)?|crash(?:ed)?|aborted)\b")
_EXIT_WORDS = re.compile(r"(?i)\b(?:exit(?:ed)?|return(?:ed)?|status)\b.{0,30}\d|\bnon-?zero (?:exit|return|status)\b")


INTRO_REACH = 2
INTRO_SCORE = SPECIFICITY[Kind.CAUSE] + 1.0  # the detail a header announces: more than the error reporting it


# Headers whose announced line is one of their block's fields, how far it may be, and what it scores
# (torchrun's exit code is how a rank ended, less than the rank's own traceback when there is one)
INTRO_FIELDS: dict[str, tuple[re.Pattern[str], int, float]] = {
    # its `traceback :` field when it holds more than the boilerplate (`Signal 9 (SIGKILL) received
    # by PID 14750`), else its `exitcode :`
    "intro.torchrun_root_cause": (re.compile(r"^(?:traceback\s*: (?!To enable traceback)|exitcode\s*: )"), 8,
                                  SPECIFICITY[Kind.ERROR] - 0.2),
}


def introduced(log: Lines, intro: Candidate) -> Candidate | None:
    """The line a header announces (`Last error:` → `socketStartConnect: ... failed`), as a cause."""
    field = INTRO_FIELDS.get(intro.rule.name) if intro.rule is not None else None
    if field is not None:
        pattern, reach, score = field
        fields = [j for j in range(intro.line + 1, min(len(log), intro.line + 1 + reach))
                  if pattern.match(log.body(j).strip())]
        if not fields:
            return None
        j = fields[-1]  # the last field the header's block names (traceback after exitcode)
        return Candidate(j, Kind.ERROR, intro.rule, intro.category, log.body(j).strip(), score)
    header = log.norm(intro.line)
    seen = 0
    for j in range(intro.line + 1, min(len(log), intro.line + 1 + 3 * INTRO_REACH)):
        text = log.body(j).strip()
        line = log.norm(j)
        labelled = label(text) if text else None
        if not text or (labelled is not None and labelled[0].kind is Kind.NOISE) \
                or line.wandb != header.wandb or (line.level != header.level and line.level in ("INFO", "WARNING", "DEBUG")):
            continue  # another process's line, interleaved
        seen += 1
        if seen > INTRO_REACH:
            return None
        cause = cause_in(text)  # the header knows where it was (NCCL: distributed), the words only what
        category = intro.category or (cause.category if cause is not None else None)
        score = INTRO_SCORE + min(LEVEL_ADJUST.get(log.norm(j).level or "", 0.0), 0.0)
        return Candidate(j, Kind.CAUSE, intro.rule, category, text, score)
    return None


def statement_before(log: Lines, wrapper: Candidate, known: dict[int, Candidate]) -> Candidate | None:
    """The tool's own words just before a wrapper that only says a step failed ("The command
    ... returned a non-zero code: 1" after poetry's "version solving failed"), as a candidate. A
    wrapper that names the signal that ended the process (Open MPI's `mpirun noticed that process
    rank 1 ... exited on signal 9 (Killed).`) says more than the words before it."""
    if _SIGNAL_NAMED.search(wrapper.text):
        return None
    seen = 0
    for j in range(wrapper.line - 1, max(-1, wrapper.line - 4 * LOOKBACK), -1):
        held = known.get(j)
        if held is not None and held.kind in (Kind.CAUSE, Kind.ERROR):
            return None  # a line the rules already know: scoring weighs it
        if held is not None:
            continue  # another wrapper, a retry, a noise line
        text = log.body(j).strip()
        if not text or _LAYOUT.match(text) or log.norm(j).level in ("WARNING", "INFO", "DEBUG"):
            continue
        seen += 1
        if seen > LOOKBACK:
            return None
        labelled = label(text)
        if labelled is not None and labelled[0].kind in (Kind.NOISE, Kind.TRANSIENT, Kind.SUCCESS,
                                                         Kind.STEP_SUCCESS):
            continue
        if FAILURE_WORDS.search(_NEGATED.sub(" ", text)) and not _EXIT_WORDS.search(text):
            cause = cause_in(text)
            category = cause.category if cause is not None else wrapper.category
            return Candidate(j, Kind.ERROR, RULES_BY_NAME["wrapper.preceding"], category, text,
                             PRECEDING_SCORE)
    return None


_NONE_WORDS = re.compile(r"(?i)\b(?:0|no|zero|without) (?:failed|failures?|errors?|exceptions?)\b|\b(?:failed|errors?): 0\b")
LAST_REACH = 3
_METRIC = re.compile(r"\b[a-z]+[ _]error\s*[:=]\s*[-+]?\.?\d")  # a measure (`validation: relative error: 1.2e-3`)
# the last cell of a drawn table's row (`| exec-1      | FAILED |`, sparkctl's status; the row's
# start is read as a gutter and a container's name): a report's cell, no statement
_TABLE_CELL = re.compile(r"\s\|$")
_FAILED_WORD = re.compile(r"(?i)\bfail(?:ed|ure)?\b")
_WARNING_WORD = re.compile(r"(?i)^\W{0,3}warn(?:ing)?\b")
_STUCK_ON = frozenset({"network", "timeout", "service"})
# (not W&B's `Network error resolved after 0:01:38, resuming normal operation.`)
_PROGRESS_BAR = re.compile(r"\d%\|")  # tqdm's `  3%|▎  | 9/289 [...]`
_STILL_RETRYING = re.compile(r"(?i)\bentering retry loop\b|\bretrying\b")
TEARDOWN_REACH = 8
# a statement that leads with its failure: `Failed to start ...`, `foo: cannot open ...`
_LEADS_WITH_FAILURE = re.compile(
    r"(?i)^(?:[\w./<>-]+:? ){0,3}(?:error|failed|failure|fatal|cannot|can't|unable to|could not|couldn't)\b[ :]")


def last_statement(log: Lines, known: dict[int, Candidate], skip: set[int]) -> Candidate | None:
    """The log's last words, when they say something failed and no rule knows them: a log cut at
    its error (a tool that printed one line and exited) ends with it. Teardown, noise and other
    loggers' lines after them are passed over."""
    seen = 0
    last_retry_seen = False
    warned = False
    for j in range(len(log) - 1, max(-1, len(log) - 60), -1):
        text = log.body(j).strip()
        if not text or j in skip or _LAYOUT.match(text):
            continue
        if _TABLE_CELL.search(text):  # a report's row: never last words, but read as a line
            seen += 1
            if seen > LAST_REACH:
                return None
            continue
        held = known.get(j)
        if held is not None and held.rule is not None and held.rule.name == "noise.handled":
            return None  # `debconf: falling back to frontend: Noninteractive`: what came before was handled
        if held is not None and held.kind is Kind.TRANSIENT and seen == 0 and not last_retry_seen:
            last_retry_seen = True
            cause = cause_in(text)
            # (W&B says `Network error resolved after ...` when it recovers, wandb/sdk/lib/retry.py;
            # a lone `Retrying in 2s` of another program says nothing of how it ended)
            if cause is not None and cause.category in _STUCK_ON and log.norm(j).wandb \
                    and _STILL_RETRYING.search(text) \
                    and not any(_PROGRESS_BAR.search(log.raw[k][:MATCH_LIMIT]) for k in range(max(0, j - 10), j + 1)):
                # the log ends retrying what failed (W&B's `Network error (ReadTimeout), entering
                # retry loop.` until someone stopped it): the retry's reason is its last word; not
                # while a progress bar runs (W&B retries in the background, training goes on)
                return Candidate(j, Kind.ERROR, RULES_BY_NAME["log.last_words"], cause.category, text,
                                 LAST_WORDS_SCORE)
        if held is not None and held.kind is Kind.STEP_SUCCESS and seen == 0:
            return None  # the log ends with a step that went well (Terraform's `Apply complete!`)
        if held is not None and held.block_end is None and held.kind in (
                Kind.NOISE, Kind.TEARDOWN, Kind.TRANSIENT, Kind.STEP_SUCCESS):
            continue
        if held is not None:
            return None  # the rules know how this log ends (a clean SystemExit too): scoring weighs it
        line = log.norm(j)
        if line.wandb or line.level in ("WARNING", "DEBUG") or _WARNING_WORD.match(text):
            # (pkg's `> Warning Failed to make bytecode ...` is a warning in its own words)
            warned = warned or (not line.wandb and line.level != "DEBUG" and _FAILED_WORD.search(text) is not None)
            continue
        if line.level == "INFO":
            return None  # the program went on logging: what came before was not its last word
        seen += 1
        if seen > LAST_REACH:
            return None
        if _LEADS_WITH_FAILURE.match(text) and not _NONE_WORDS.search(text) and not _EXIT_WORDS.search(text) \
                and not _METRIC.search(text):
            if warned:
                return None  # the program's own last word on it was a warning (`Warning: Cache save failed.`)
            if any(before.kind is Kind.TEARDOWN for k in range(max(0, j - TEARDOWN_REACH), j)
                   if (before := known.get(k)) is not None):
                return None  # said while the program shut down (a logging client's last flush)
            cause = cause_in(text)
            return Candidate(j, Kind.ERROR, RULES_BY_NAME["log.last_words"],
                             cause.category if cause is not None else None, text, LAST_WORDS_SCORE)
    return None


_REFINED = (None, "unknown", "invalid_config", "service")


def append_detail(log: Lines, c: Candidate, most: int = 3) -> None:
    """requests/huggingface_hub print "403 Client Error. (Request ID: ...)" and the reason on the
    lines after a blank one: the reason joins the message, and may name the category."""
    n = len(log)
    q = (c.block_end if c.block_end is not None else c.line) + 1
    if q < n and not log.body(q).strip():
        q += 1
    more: list[str] = []
    while q < n and log.body(q).strip() and len(more) < most:
        text = log.body(q).strip()
        labelled = label(text)
        if (labelled is not None and labelled[0].kind is Kind.NOISE) \
                or log.norm(q).level in ("INFO", "DEBUG", "WARNING"):
            q += 1  # another process's progress bar or log line, interleaved
            continue
        if (labelled is not None and labelled[0].kind not in (Kind.CAUSE, Kind.ERROR)) \
                or log.norm(q).level is not None or log.norm(q).wandb:
            break  # a line of another kind, or another logger's
        more.append(text)
        q += 1
    if more:
        cause = cause_in(" ".join(more))
        c.text = " ".join([c.text, *more])
        # the reason refines a status that says little (400, 500); a 403 stays a permission even
        # when its reason says to log in (`... you are not in the authorized list`)
        if cause is not None and cause.category and c.category in _REFINED:
            c.category = cause.category
