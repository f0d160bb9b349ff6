"""One pass over a log: candidate lines, each labelled and scored; traceback blocks parsed.

Only lines holding one of a broad set of words are looked at closely (one pass over the
joined text), so a 10,000-line log of ordinary output costs little. A candidate's score is its
specificity (a cause beats a general error, which beats a wrapper), moved by the level the line
was printed at and by what follows it: an error followed by a retry may still recover.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Sequence

from arrctl.extract.ingest import MATCH_LIMIT, normalise
from arrctl.extract.lines import LEVEL_ADJUST, Candidate, Lines
from arrctl.extract.literals import Literals
from arrctl.extract.nearby import (DETAIL_FOLLOWS, ONE_LINE_FOLLOWS, VALIDATION_FOLLOWS, append_detail, introduced,
                                   last_statement, statement_before)
from arrctl.extract.rules import (
    WORDY_STATUSES,
    FAILURE_WORDS, RULES, RULES_BY_NAME, SPECIFICITY, Kind, Rule, cause_in, class_category, label,
)

__all__ = ["Candidate", "Lines", "PREFILTER", "candidate_indexes", "scan"]

TRACEBACK_HEADER = "Traceback (most recent call last):"
CHAIN_SEPARATORS = frozenset({
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
})
# An uncaught exception says more than a line in general words, less than a named cause.
EXCEPTION_SPECIFICITY = 2.3
# A generic line printed at ERROR level: with failure words it is an error, without, barely.
LEVEL_ERROR_WORDS = 1.6
LEVEL_ERROR_BARE = 1.2
LEVEL_FATAL = 1.7
# a line of an HTML error page (`<title>404 Not Found</title>`, `<h1>Internal Server Error</h1>`)
_HTML_BODY = re.compile(r"^<(?:title|h1|h2|h3|p|pre|body|html|head)\b", re.I)
HTML_PENALTY = 1.5
RELAYED_EXCEPTION_ADJUST = -0.8
RETRIED_PENALTY = 3.5  # below zero: a retried error is evidence of nothing unless the run failed
WRAPPER_WITH_CAUSE = 1.5
RETRY_REACH = 3  # lines before a retry line whose errors it may recover from
THREAD_PENALTY = 1.0
# A cancellation (asyncio's, TensorFlow's `CancelledError: Enqueue operation was cancelled`, a
# future's) is raised in work that something else stopped: alone it does not show that the run failed.
CANCELLED_PENALTY = 1.0
_CANCELLED = re.compile(r"(?:^|\.)Cancel+ed(?:Error)?$")
BARE_STATUS_PENALTY = 0.2
OOM_WARNING_ADJUST = -1.0
CATCHER_PENALTY = 0.4
_CATCHER_RULES = frozenset({"level.error", "wandb.error", "generic.error"})
WENT_ON_PENALTY = 0.5
CHAIN_PENALTY = 0.1  # per exception after the first of a chain: the root is what went wrong

_EXCEPTION_SHAPE = re.compile(r"^(?:(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Failure|Fault)\b|Error):")
# an exception as a traceback's last line names it: `pkg.mod.BadRequest: ...`, `KeyError: ...`
_RAISED = re.compile(r"^(?:(?:[a-z_]\w*\.)+[A-Z]\w*|(?:[A-Za-z_]\w*\.)*[A-Z]\w*(?:Error|Exception|Failure|Fault)): ")
# a line relayed at INFO that says ERROR itself (gcloud's `ERROR: (gcloud.app.deploy) ...` behind
# Maven's `[INFO] GCLOUD: `): the level is the relay's
_OWN_ERROR = re.compile(r"^(?:ERROR|FATAL):? ")
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*(?P<cls>[A-Za-z_]\w*)(?P<rest>:.*)?$")
_EXCEPTION_CLASS = re.compile(r"(?:Error|Exception|Exit|Interrupt|Failure|Fault|Timeout|Denied|"
                              r"NotFound|Exhausted|Unavailable|Exceeded|Aborted|Cancelled|Warning)$")

_WORDS = (
    # errors, as words (a line with `errors_total=0` only is dropped again by _ERROR_WORD)
    "Error", "error", "ERROR", "xception", "Traceback", "ailed", "ailure", "FAIL", "atal", "ATAL",
    "ERR!", "err:", "anic",
    # what went wrong
    "enied", "ENIED", "xceed", "XCEED", "illed", "KILL", "exit", "Exit", "EXIT", "xited",
    "imed out", "IMEOUT", "imeout", "nable to", "annot", "ould not", "ot found", "NOT_FOUND",
    "exist", "o such", "nvalid", "INVALID", "efused", "reset by", "uota", "XHAUSTED", "emory",
    "OOM", "reempt", "apacity", "nough resources", "navailable", "UNAVAILABLE", "uthori",
    "UTHORI", "UNAUTH", "uthentic", "redential", "etry", "etries", "NCCL", "egmentation", "SIG",
    "dumped", "ommand not found", "xec format", "upported", "anifest", "ackOff", "ack-off",
    "endezvous", "atchdog", "ismatch", "ssert", "Killing agent", "ALREADY", "ABORTED",
    "CANCELLED", "PRECONDITION", "DEADLINE", "UNIMPLEMENTED", "OUT_OF_RANGE", "INTERNAL",
    "UNKNOWN", "StatusCode", "esolve", "nmet", "ndefined", "Go files", "pace left", "topped",
    "rash", "abort", "Abort", "ate-limit", "ate limit", "ogin Required", "ogged in", "xpired",
    "401", "403", "404", "429", "onnection", "erminate", "probe", "nd listen", "xecutable",
    "🚨", "❌", "✗", "×", "ncompatible", "but you'll have", "equires", "went wrong",
    # success and the run's own verdicts
    "Runs:", "omplete", "inished", "ucceed", "UCCE", "ccessful", "DONE", "OK", "train_runtime",
    "Marking task", "Finished in state", "return code", "(0)", "STATE_",
)
# Error words are read as words: `errors_total=0` and `val_error` are metric names, not errors.
_WEAK = frozenset({"Error", "error", "ERROR"})
_WORD_CHAR = re.compile(r"\w")


def _minimal_words(words: Sequence[str]) -> list[str]:
    """The words that hold no other word: enough to answer "does any of them occur". A weak word
    (read only as a word of its own) does not stand for a longer one (`hipErrorNoBinaryForGpu`)."""
    unique = sorted(set(words))
    return [w for w in unique if not any(o != w and o in w and o not in _WEAK for o in unique)]


def _rule_words() -> list[str]:
    """The substring each rule pattern's matches must hold: no rule is hidden by the prefilter."""
    words = []
    for rule in RULES:
        for literals, folded in rule.guards:
            for literal in literals:
                words += [literal, literal.capitalize(), literal.upper()] if folded else [literal]
    return words


PREFILTER = Literals(_minimal_words([*_WORDS, *_rule_words()]))


def _is_error_word(text: str, start: int, word: str) -> bool:
    """Whether a weak word at `start` is a word of its own: `Error` ends one (`KeyError`), `error`
    and `ERROR` stand alone (`val_error`, `errors_total` are metric names)."""
    end = start + len(word)
    if end < len(text) and _WORD_CHAR.match(text, end):
        return False
    return word == "Error" or start == 0 or not _WORD_CHAR.match(text, start - 1)


def candidate_indexes(lines: Sequence[str]) -> list[int]:
    """Indexes of the lines holding any prefilter word. A log repeats its lines (a warning per
    step, a retry loop's message), so each distinct line is read once."""
    distinct = list(dict.fromkeys(lines))
    holding = {distinct[k] for k in _holding([line[:8192] for line in distinct])}
    return [i for i, line in enumerate(lines) if line in holding]


def _holding(lines: Sequence[str]) -> list[int]:
    """Indexes of the lines holding any prefilter word: one pass over the joined text (no word
    holds a newline, so every occurrence lies within one line)."""
    text = "\n".join(lines)
    starts = [0, *itertools.accumulate(len(line) + 1 for line in lines)][:len(lines)]
    found: list[int] = []
    next_line = -1  # where the line after the last one found starts: its other words are not needed
    for start, word in PREFILTER.occurrences(text):
        if start < next_line or (word in _WEAK and not _is_error_word(text, start, word)):
            continue
        index = bisect.bisect_right(starts, start) - 1
        found.append(index)
        next_line = starts[index + 1] if index + 1 < len(starts) else len(text)
    return found


@functools.lru_cache(maxsize=8192)
def labelled_line(body: str, level: str | None, wandb: bool) -> tuple[
        Kind, Rule | None, str | None, str, float, re.Match[str] | None] | None:
    """What a line (as normalised) makes on its own wherever it stands: a repeated line is read once."""
    text = body.strip()
    if not text:
        return None
    labelled = label(text)
    if labelled is not None:
        rule, match = labelled
        score = SPECIFICITY.get(rule.kind, 0.0) + rule.weight
        if rule.weight < 0 and _EXCEPTION_SHAPE.match(text):
            score -= rule.weight  # a broad phrase, but in an exception's own words
        if _HTML_BODY.match(text):
            score -= HTML_PENALTY  # a server's error page below the client's own line about it
        category = rule.category
        if rule.kind in (Kind.CAUSE, Kind.ERROR):
            # A low level lowers any line; ERROR raises only a line in general words (a cause
            # re-printed at ERROR by whoever caught it is not more than the exception itself).
            adjust = LEVEL_ADJUST.get(level or "", 0.0)
            if level == "INFO" and (_RAISED.match(text) or _OWN_ERROR.match(text)):
                # a traceback's last line relayed at INFO (Meltano, Airflow relay a child's
                # stderr at INFO): the exception was raised whatever level carried it
                adjust = RELAYED_EXCEPTION_ADJUST
            if rule.category == "oom" and rule.kind is Kind.CAUSE and level == "WARNING":
                # TensorFlow and XLA warn of the allocation that failed (`W ... op_kernel.cc] ...
                # Resource exhausted: ...`): memory gone is no fallback, whatever level says so
                adjust = OOM_WARNING_ADJUST
            score += min(adjust, 0.0) if rule.kind is Kind.CAUSE else adjust
        elif rule.kind in (Kind.WRAPPER, Kind.FAILED):
            cause = cause_in(text)  # "build step 3 failed: context deadline exceeded"
            if cause is not None:
                score, category = WRAPPER_WITH_CAUSE, cause.category
        return rule.kind, rule, category, text, score, match
    if level in ("ERROR", "FATAL"):
        if not _WORDED.search(text):
            return None  # `ERROR:...error_handler:{`: a JSON body opens, its message is inside it
        if wandb:  # W&B prints ERROR for its own errors
            return Kind.ERROR, RULES_BY_NAME["wandb.error"], None, text, SPECIFICITY[Kind.ERROR], None
        score = LEVEL_ERROR_WORDS if FAILURE_WORDS.search(text) else LEVEL_ERROR_BARE
        if level == "FATAL":  # the program's last word: it ended there, whatever the words
            score = max(score, LEVEL_FATAL)
        return Kind.ERROR, RULES_BY_NAME["level.error"], None, text, score, None
    return None


REPORTED_REACH = 3


def _warned_cause_reported(log: Lines, by_line: dict[int, Candidate]) -> None:
    """A cause printed at WARNING, then an ERROR line in general words right after it (Ray's
    `WARNING worker.py -- A worker died or was killed ...`, then `ERROR trial_runner.py -- Trial
    x: Error processing event.`): the error reports the cause, which says what happened."""
    for c in [c for c in by_line.values() if c.rule is not None and c.rule.name == "level.error"]:
        for j in range(c.line - 1, max(-1, c.line - 1 - REPORTED_REACH), -1):
            cause = by_line.get(j)
            if cause is not None and cause.kind is Kind.CAUSE and log.norm(j).level == "WARNING":
                cause.score = max(cause.score, c.score + 0.1)
                break


def _unittest_verdicts(log: Lines, by_line: dict[int, Candidate]) -> None:
    """unittest's `OK` is its verdict only just below its count (`Ran 49 tests in 71.898s`, a blank
    line, `OK (skipped=3)`); anywhere else it is some program's word of the moment."""
    for i in [i for i, c in by_line.items() if c.rule is not None and c.rule.name == "success.unittest"]:
        above = [j for j in range(i - 1, max(-1, i - 4), -1) if log.body(j).strip()][:1]
        if not above or not _TESTS_RAN.match(log.body(above[0]).strip()):
            del by_line[i]


_TESTS_RAN = re.compile(r"^Ran \d+ tests? in [\d.]+s$")


def _causes_of_warnings(log: Lines, by_line: dict[int, Candidate]) -> None:
    """anyhow's and cargo's `Caused by:` alone on its line goes on with the line above it (past a
    blank one): below a warning (mount-s3's `WARN ... no throughput detected, ...`), its cause is
    the warning's, not an error."""
    for i in [i for i, c in by_line.items() if c.rule is not None and c.rule.name == "chain.caused_by"
              and c.text.rstrip().endswith("Caused by:")]:
        above = next((j for j in range(i - 1, max(-1, i - 3), -1) if log.body(j).strip()), None)
        if above is not None and log.norm(above).level in ("WARNING", "INFO", "DEBUG"):
            del by_line[i]


_WORDED = re.compile(r"[^\W\d_]{2}")  # a word of two letters at least
IPYTHON_REACH = 300


def _ipython_tracebacks(log: Lines, by_line: dict[int, Candidate]) -> None:
    """IPython's (and Colab's) traceback: a header naming the exception's class (`FileNotFoundError
    Traceback (most recent call last)`), frames with numbered source lines (`-> 1491  raise
    FileNotFoundError(`), and the class with its message at the start of a line. The source lines
    are code, not errors: only the last line is the exception."""
    headers = [c for c in by_line.values() if c.rule is not None and c.rule.name == "noise.ipython_header"]
    for header in headers:
        cls = header.text.split()[0]
        for j in range(header.line + 1, min(len(log), header.line + IPYTHON_REACH)):
            if log.raw[j].startswith(cls) or log.body(j).startswith(cls + ":"):
                for k in range(header.line + 1, j):
                    by_line.pop(k, None)
                break


def _short_exception(text: str) -> tuple[str, str]:
    """`google.api_core.exceptions.NotFound: 404 x` → (`NotFound`, `NotFound: 404 x`)."""
    found = _EXCEPTION_LINE.match(text)
    if not found:
        return "", text
    return found.group("cls"), short_class_path(text)


def short_class_path(text: str) -> str:
    """A line that starts with an exception's class, its module path dropped when long or private
    (`com.google.cloud.ai.platform.common.errors.X: ` → `X: `, `grpc._channel._InactiveRpcError: `);
    a path of one or two public modules stays (`torch.cuda.OutOfMemoryError: `: what people search for)."""
    found = _CLASS_PATH.match(text)
    if not found:
        return text
    path = found.group("path")
    if path.count(".") <= SHORT_MODULE_PATH and "._" not in "." + path:
        return text
    return text[found.end("path"):]


SHORT_MODULE_PATH = 2
_CLASS_PATH = re.compile(r"^(?P<path>(?:[A-Za-z_]\w*\.)+)(?=_?[A-Z]\w*(?::|$))")  # (a class: `json: 404` is none)


def _is_frame(text: str, indent: int = 0) -> bool:
    """Whether a line is a frame of a traceback whose header is indented by `indent` (pip relays a
    build's traceback six spaces in: its exception line is as deep as its header, its frames deeper)."""
    if indent and text[:indent].strip() == "":
        text = text[indent:]
    return text[:1] in (" ", "\t") or text.startswith(("File \"", "^", "~"))


def _tracebacks(log: Lines, headers: list[int]) -> tuple[list[Candidate], set[int], set[int]]:
    """The exceptions of each traceback chain as candidates; frame lines; ignored lines."""
    found: list[Candidate] = []
    frames: set[int] = set()
    ignored: set[int] = set()
    unset: set[int] = set()
    n = len(log)
    done = -1
    for header in headers:
        if header <= done:
            continue
        chain: list[tuple[int, str, str]] = []
        j = end = header
        while True:
            k = j + 1
            head = log.body(j)
            indent = len(head) - len(head.lstrip())
            while k < n and _is_frame(log.body(k), indent):
                frames.add(k)
                k += 1
            end = k - 1
            if k >= n or not _EXCEPTION_LINE.match(log.body(k).strip()):
                break  # cut short, or something else interleaved: no exception line to show
            cls, text = _short_exception(log.body(k).strip())
            # An exception's message may go on over indented lines (gRPC's status block).
            m = k + 1
            more: list[str] = []
            while m < n and _is_frame(log.body(m), indent) and log.body(m)[indent:][:1] in (" ", "\t") \
                    and len(more) < 8:
                more.append(log.body(m).strip())
                frames.add(m)
                m += 1
            chain.append((k, cls, " ".join([text, *more])))
            if cls == "KeyError" and any(_ENVIRON_FRAME.search(log.body(x)) for x in range(max(j + 1, k - 3), k)):
                unset.add(k)  # os.environ[name] of a variable not set: the environment is wrong
            end = m - 1
            p = m
            while p < n and not log.body(p).strip():
                p += 1
            if p < n and log.body(p).strip() in CHAIN_SEPARATORS:
                q = p + 1
                while q < n and not log.body(q).strip():
                    q += 1
                if q < n and log.body(q).endswith(TRACEBACK_HEADER):
                    j = q
                    continue
            break
        done = end
        before = log.body(header - 1).strip() if header > 0 else ""
        if before.startswith(("Exception ignored in", "Exception ignored on", "Error in atexit")):
            ignored.update(range(header, end + 1))
            continue
        # A thread's death is printed and the program goes on: it may or may not be the end.
        # A traceback a logger printed at WARNING (`exc_info=True`) was handled.
        in_thread = before.startswith("Exception in thread")
        served = _REQUEST_EXCEPTION.search(before) is not None  # a request's: the server answered 500
        # (A C++ library's warning just before it is another logger's line: TensorFlow's
        # `W tensorflow/core/...cc:103] ...` is no Python logger's header.)
        # (A banner's rule of asterisks is no message a logger printed the traceback with: torchrun's
        # `W0104 ... run.py:792] ****` over its OMP_NUM_THREADS notice, then a worker's traceback.)
        handled = header > 0 and normalise(log.raw[header - 1]).level == "WARNING" \
            and not _CPP_LOG.search(log.raw[header - 1][:200]) and _WORDED.search(log.body(header - 1)) is not None
        if header > 0 and not handled:  # the program's own words before it: a notice that it goes on without
            said = label(log.body(header - 1).strip())
            handled = said is not None and said[0].name == "noise.went_without"
        for position, (line, cls, text) in enumerate(chain):
            exc = _exception_candidate(log, line, cls, text, _told_again(chain, position), end)
            if line in unset:
                exc.category = "invalid_config"
            if in_thread:
                exc.score -= THREAD_PENALTY
            if _CANCELLED.search(cls):  # what a stop does to work in progress: the cause is elsewhere
                exc.score -= CANCELLED_PENALTY
            if handled or served:
                exc.score -= RETRIED_PENALTY
            found.append(exc)
    return found, frames, ignored


_REQUEST_EXCEPTION = re.compile(r"\bException on /\S* \[[A-Z]+\]$")  # (noise.request's: a server goes on)
# the frame of os.environ's lookup raising for a name it lacks (`File ".../os.py", line 679, in
# __getitem__` then `raise KeyError(key) from None`)
_ENVIRON_FRAME = re.compile(r'[/\\]os\.py", line \d+, in __getitem__$')
RETOLD_MIN = 20
EMPTY_MESSAGE_PENALTY = 0.5


def _told_again(chain: list[tuple[int, str, str]], position: int) -> float:
    """The place in its chain an exception is scored at: its own, or, when it repeats an earlier
    one's message with more (huggingface_hub's `raise HfHubHTTPError(str(e)) from e`, the server's
    reason printed below it), just ahead of the one it retells."""
    words = chain[position][2].partition(": ")[2]
    for earlier in range(position):
        told = chain[earlier][2].partition(": ")[2].strip()
        if len(told) >= RETOLD_MIN and words.startswith(told):  # (not a wrapper that names it last)
            return earlier - 0.5
    return position


def _exception_candidate(log: Lines, line: int, cls: str, text: str, position: float,
                         end: int) -> Candidate:
    """A candidate for one exception of a traceback: labelled by the rules, else by its class."""
    labelled = label(text)
    # An uncaught exception is printed on stderr as an error, whatever carried the lines.
    penalty = CHAIN_PENALTY * position - LEVEL_ADJUST["ERROR"]
    if labelled is not None and labelled[0].kind is Kind.NOISE:  # SystemExit: 0
        return Candidate(line, Kind.NOISE, labelled[0], None, text, 0.0, labelled[1], end)
    if "StatusCode." in text and 'details = "' not in text:
        penalty += BARE_STATUS_PENALTY  # a gRPC status with no details says less than its twin
    if text.rstrip().endswith(":") and text.count(":") == 1:
        penalty += EMPTY_MESSAGE_PENALTY  # `ChildFailedError: ` says less than the launcher's line above it
    if labelled is not None and labelled[0].kind in (Kind.CAUSE, Kind.ERROR, Kind.WRAPPER) \
            and labelled[0].name != "generic.error":
        rule, match = labelled
        score = max(SPECIFICITY[rule.kind], EXCEPTION_SPECIFICITY if rule.kind is Kind.ERROR else 0)
        score += rule.weight
        category = rule.category or class_category(cls)
        return Candidate(line, rule.kind, rule, category, text, score - penalty, match, end)
    return Candidate(line, Kind.ERROR, RULES_BY_NAME["python.exception"],
                     class_category(cls), text, EXCEPTION_SPECIFICITY - penalty, None, end)


def scan(log: Lines) -> list[Candidate]:
    """Every candidate of a log, in line order, with retries and teardown applied."""
    by_line: dict[int, Candidate] = {}
    headers: list[int] = []
    made: dict[str, tuple[bool, tuple | None]] = {}  # what a raw line made, when it comes again
    for i in candidate_indexes(log.raw):
        raw = log.raw[i]
        if log.levels is None and raw in made:
            header, labelled = made[raw]
        else:
            line = log.norm(i)
            header = line.text.endswith(TRACEBACK_HEADER)
            labelled = None if header else labelled_line(line.text, line.level, line.wandb)
            made[raw] = header, labelled
        if header:
            headers.append(i)
        elif labelled is not None:
            by_line[i] = Candidate(i, *labelled)
    _ipython_tracebacks(log, by_line)
    _unittest_verdicts(log, by_line)
    _causes_of_warnings(log, by_line)
    _raised_after_warning(log, by_line, headers)
    _logged_with_traceback(log, by_line, headers)
    _warned_cause_reported(log, by_line)
    exceptions, frames, ignored = _tracebacks(log, headers)
    for i in frames | ignored:
        by_line.pop(i, None)
    for exc in exceptions:  # the traceback parser knows more of its lines than a line alone
        by_line[exc.line] = exc
    for intro in [c for c in by_line.values() if c.kind is Kind.INTRO]:
        found = introduced(log, intro)
        if found is not None:
            by_line[found.line] = found
    for wrapper in [c for c in by_line.values() if c.kind in (Kind.WRAPPER, Kind.FAILED)
                    and not c.text.endswith(":")]:  # `... encountered exception:`: its cause follows
        found = statement_before(log, wrapper, by_line)
        if found is not None:
            by_line[found.line] = found
    for opener in [c for c in by_line.values() if c.kind in (Kind.WRAPPER, Kind.FAILED, Kind.ERROR)
                   and c.text.endswith(":")]:
        found = _status_below(log, opener)
        held = by_line.get(found.line) if found is not None else None
        if found is not None and (held is None or held.kind in (Kind.WRAPPER, Kind.FAILED)):
            by_line[found.line] = found  # (the status's words say more than `The DAG failed` alone)
    last = last_statement(log, by_line, frames | ignored)
    if last is not None:
        by_line[last.line] = last
    candidates = [by_line[i] for i in sorted(by_line)]
    for c in candidates:
        if DETAIL_FOLLOWS.search(c.text):
            append_detail(log, c)
        elif ONE_LINE_FOLLOWS.search(c.text):
            append_detail(log, c, most=1)
        elif VALIDATION_FOLLOWS.search(c.text):
            append_detail(log, c, most=2)
        elif (c.kind in (Kind.CAUSE, Kind.ERROR) or (c.kind is Kind.WRAPPER and c.text.endswith(":"))) \
                and c.block_end is None:
            _join_continuation(log, c)
    candidates = _reasons_joined(candidates)
    _gated_refused(log, candidates)
    _nccl_warned(candidates)
    _attempts_before(candidates)
    _apply_retries(log, candidates)
    _done_after_all(log, candidates)
    _offline_index(candidates)
    _went_on(log, candidates)
    _survived(log, candidates)
    _after_post_job(log, candidates)
    return candidates


def _gated_refused(log: Lines, candidates: list[Candidate]) -> None:
    """transformers says `You are trying to access a gated repo.` for any refusal of a gated model:
    a 401 around it (no token) is auth, a 403 (access not granted, or awaiting review) a permission."""
    for c in candidates:
        if c.rule is not None and c.rule.name == "hf.gated" and any(
                _FORBIDDEN.search(log.body(j)) for j in range(max(0, c.line - GATED_REACH), min(len(log), c.line + GATED_REACH))):
            c.category = "permission"


_FORBIDDEN = re.compile(r"\b403 (?:Client Error|Forbidden)\b|\bGatedRepoError: 403\b")
GATED_REACH = 12


# NCCL's result in general words (ncclGetErrorString: `unhandled cuda error (run with
# NCCL_DEBUG=INFO for details)`), as torch raises it: the `NCCL WARN` line before it says which
_NCCL_RESULT = re.compile(r"\b(?:unhandled (?:cuda|system) error|internal error|invalid usage)\b.{0,20}"
                          r"\(run with NCCL_DEBUG=INFO for details\)")
_NCCL_WARN = re.compile(r"\bNCCL WARN\b")
NCCL_WARN_REACH = 200


def _nccl_warned(candidates: list[Candidate]) -> None:
    """An NCCL error that points to its debug output, printed after NCCL's own warning of the
    failure (`transport/nvls.cc:254 NCCL WARN Cuda failure 1 'invalid argument'`): the warning names it."""
    warns = [w for w in candidates if w.kind is Kind.CAUSE and _NCCL_WARN.search(w.text)]
    if not warns:
        return
    lines = [w.line for w in warns]
    for c in candidates:
        if c.kind is not Kind.CAUSE or not _NCCL_RESULT.search(c.text):
            continue
        k = bisect.bisect_left(lines, c.line) - 1  # the last warning before it
        if k >= 0 and c.line - lines[k] <= NCCL_WARN_REACH:
            warns[k].score = max(warns[k].score, c.score + 0.1)


# the Kubernetes client's ApiException as it prints (`(500)`, then `Reason: Internal Server Error`,
# the headers and the body): the line ending in the status is the error, the reason its detail
_STATUS_END = re.compile(r"\(\d{3}\)$")
_REASON = re.compile(r"^Reason: \S")


def _reasons_joined(candidates: list[Candidate]) -> list[Candidate]:
    """An error that ends with an HTTP status in parentheses and the `Reason: ...` line after it: one
    candidate (`Exception: Unable to get pod log (500) Reason: Internal Server Error`)."""
    gone: set[int] = set()
    said = [c for c in candidates if c.kind is not Kind.NOISE]  # (past another program's noise between)
    for c, d in zip(said, said[1:]):
        if d.line - c.line <= JOIN_REACH and c.kind in (Kind.CAUSE, Kind.ERROR) \
                and _STATUS_END.search(c.text.rstrip()) and _REASON.match(d.text):
            c.text = f"{c.text.rstrip()} {d.text}"
            c.match = None
            c.score = max(c.score, d.score)
            if d.category and c.category in (None, "unknown", "code"):
                c.category = d.category
            gone.add(d.line)
    return [c for c in candidates if c.line not in gone] if gone else candidates


# a numbered attempt that failed (`Attempt 0 to upload to GCS failed: exit status 1`, `attempt 2/5
# failed`), and the account of them all (`Multiple attempts of gsutil failed, the final one due to: ...`)
_ATTEMPT = re.compile(r"(?i)\battempt #?\d+\b")
_FAILED_ATTEMPT = re.compile(r"(?i)\battempt #?\d+\b.*\bfail|\bfail.*\battempt #?\d+\b")
_ATTEMPTS = re.compile(r"(?i)\b(?:multiple|all|\d+) (?:retry )?attempts\b")
ATTEMPT_REACH = 20


def _attempts_before(candidates: list[Candidate]) -> None:
    """A failed attempt that another attempt, or the account of them all, follows was retried: the
    later line says how it ended. (The exit line after the last attempt does not retry it.)"""
    for i, c in enumerate(candidates):
        if c.kind not in _EVIDENCE_KINDS or not _FAILED_ATTEMPT.search(c.text):
            continue
        for j in range(i + 1, len(candidates)):
            d = candidates[j]
            if d.line - c.line > ATTEMPT_REACH:
                break
            if d.kind in _EVIDENCE_KINDS and (_ATTEMPT.search(d.text) or _ATTEMPTS.search(d.text)):
                c.score -= RETRIED_PENALTY
                break


def _after_post_job(log: Lines, candidates: list[Candidate]) -> None:
    """What GitHub Actions' post-job steps print after `Post job cleanup.` (a cache that could not
    be saved, tar's complaint about a path it could not stat) is their own trouble, which they
    report as a warning (`Warning: Tar failed with error: ... failed with exit code 2`): the job's
    steps had ended. A step's failure above it stays what it was, and so does a post step's own
    `Error: Process completed with exit code 1`."""
    post = next((c.line for c in candidates if c.rule is not None and c.rule.name == "teardown.post_job"), None)
    if post is None:
        return
    for c in candidates:
        if c.line > post and (c.kind in (Kind.CAUSE, Kind.ERROR) or log.norm(c.line).level == "WARNING"):
            c.score -= RETRIED_PENALTY


# a line that counts the run's progress: `Epoch: 3, accuracy: 0.14`, `step 1200 loss=0.38`
_PROGRESS = re.compile(r"(?i)^[\w ,:=-]{0,30}?\b(?:epoch|step|iter(?:ation)?|batch)\b\s*[:=#]?\s*(\d+)\b")
_PROGRESS_WORDS = ("epoch", "step", "iter", "batch")
_DIGITS = re.compile(r"\d+")
# tqdm's count of done items (`Epoch 0:   1%|▋    | 44/4943 [00:11<21:31, ...]`): it advances
# where the epoch does not; the bar's glyphs and padding change from line to line
_DONE_OF = re.compile(r"\|\s*(\d+)/\d+\s*\[")
_BAR = re.compile(r"\|[█▉▊▋▌▍▎▏ ]*\||\s+")
SURVIVED_REACH = 40
SURVIVED_LOOKS = 4
SURVIVED_COUNTS = 3  # advancing counters of one kind of line that show the run went on
_EVIDENCE_KINDS = (Kind.CAUSE, Kind.ERROR, Kind.FAILED, Kind.WRAPPER)


def _survived(log: Lines, candidates: list[Candidate]) -> None:
    """An error after which the run counted on (epoch 1, 2, 3 ...) did not end it: W&B's
    client prints its retried request's traceback and training goes on. Counters are compared
    among lines of one shape: another process's progress line, interleaved, is not the run's;
    the last count before the error is where they start. The same error again (W&B's API
    answering 500 between tqdm's lines) neither stops the count nor, once survived, ends the run."""
    by_line = {c.line: c for c in candidates}
    progress: dict[int, tuple[str, int] | None] = {}

    def counted(j: int) -> tuple[str, int] | None:
        if j not in progress:
            if not any(w in log.raw[j][:MATCH_LIMIT].lower() for w in _PROGRESS_WORDS):
                progress[j] = None  # no counter's word anywhere in the line as printed
                return None
            text = log.body(j).strip()
            lower = text[:80].lower()
            found = _PROGRESS.match(text) if any(w in lower for w in _PROGRESS_WORDS) else None
            done = _DONE_OF.search(text) if found else None
            progress[j] = (_BAR.sub(" ", _DIGITS.sub("#", text)), int((done or found).group(1))) if found else None
        return progress[j]

    def shape(c: Candidate) -> str:
        return _DIGITS.sub("#", c.text)

    def before(line: int, own: str) -> dict[str, list[int]]:
        """The last count before an error (past the same error again)."""
        for j in range(line - 1, max(-1, line - SURVIVED_REACH), -1):
            if j in by_line and by_line[j].kind in _EVIDENCE_KINDS and shape(by_line[j]) != own:
                break
            found = counted(j)
            if found:
                return {found[0]: [found[1]]}
        return {}

    # the strongest errors first, until one was not survived: the others cannot be chosen over it
    ranked = sorted((c for c in candidates if c.kind in (Kind.CAUSE, Kind.ERROR) and c.score > 0),
                    key=lambda c: -c.score)
    survived: set[str] = set()
    for c in ranked[:SURVIVED_LOOKS]:
        own = shape(c)
        if own in survived:
            continue
        start = (c.block_end if c.block_end is not None else c.line) + 1
        by_shape = before(c.line, own)
        for j in range(start, min(len(log), start + SURVIVED_REACH)):
            other = by_line.get(j)
            if other is not None and other.kind in _EVIDENCE_KINDS and shape(other) != own:
                break  # another error came: the run did not simply go on
            found = counted(j)
            if found:
                by_shape.setdefault(found[0], []).append(found[1])
        if not any(len(counts) >= SURVIVED_COUNTS and all(a < b for a, b in zip(counts, counts[1:]))
                   for counts in by_shape.values()):
            return
        survived.add(own)
        for twin in candidates:
            if twin.kind in (Kind.CAUSE, Kind.ERROR) and shape(twin) == own:
                twin.score -= RETRIED_PENALTY



def _went_on(log: Lines, candidates: list[Candidate]) -> None:
    """An ERROR line in general words after which the program went on logging at INFO was not
    the end of it (SkyPilot's `Failed to cancel jobs on cluster x.` while it recovers)."""
    general = [c for c in candidates if c.rule is not None and c.rule.name == "level.error"]
    if not general:
        return  # (a log with no INFO line would be read to its first line for nothing)
    first = min(c.line for c in general)
    last_info = next((j for j in range(len(log) - 1, first, -1) if log.norm(j).level == "INFO"), -1)
    for c in general:
        if c.line < last_info:
            c.score -= WENT_ON_PENALTY


def _logged_with_traceback(log: Lines, by_line: dict[int, Candidate], headers: list[int]) -> None:
    """A line in general words right before a traceback is what whoever caught it said of it
    (Python's `logger.exception("Problem finishing run")`): the exception below says what. A
    line with its own detail (`E ...] Execution of replica 0 failed: INTERNAL: ...`) keeps its score."""
    starts = set(headers)
    for c in by_line.values():
        if c.kind is Kind.ERROR and c.rule is not None and c.rule.name in _CATCHER_RULES \
                and ": " not in c.text and (c.line + 1 in starts or c.line + 2 in starts and not log.body(c.line + 1).strip()):
            c.score -= CATCHER_PENALTY


def _raised_after_warning(log: Lines, by_line: dict[int, Candidate], headers: list[int]) -> None:
    """A cause logged at WARNING or INFO just before a traceback begins was raised: TensorFlow
    warns `OP_REQUIRES failed at ...: Resource exhausted: OOM ...`, then raises it."""
    starts = set(headers)
    for c in by_line.values():
        if c.kind is not Kind.CAUSE or c.rule is None or log.norm(c.line).level not in ("WARNING", "INFO"):
            continue
        between = 0  # lines between them that are not noise (a warning, a progress bar)
        for j in range(c.line + 1, min(len(log), c.line + RAISED_REACH)):
            if j in starts:
                c.score = max(c.score, SPECIFICITY[Kind.CAUSE] + c.rule.weight)
                break
            if not log.body(j).strip():
                continue
            held = by_line.get(j)
            if held is None or held.kind is not Kind.NOISE:
                between += 1
                if between >= 2:
                    break


RAISED_REACH = 8


_CPP_LOG = re.compile(r"(?:^|\s)[WIEF](?:\d{4} [\d:.]+ +\d+)? [\w./-]+\.(?:cc|cpp|h):\d+\] ")


# a file an error names (`.../wandb-summary.json?Expires=...`), and a later line saying it was done
_FILE_NAMED = re.compile(r"(?<![\w-])[\w-]+\.(?:json|ya?ml|txt|log|csv|parquet|pt|pth|ckpt|bin|safetensors|npz|h5|tar|gz|zip|whl)\b")
FILE_NAMED_REACH = 4096  # the first characters of an error: where a file it names is
_DONE_WITH = re.compile(r"(?i)^(?:\S+ )?(?:uploaded|downloaded|saved|wrote|written|copied|synced)\b|"
                        r"\b(?:uploaded|downloaded|saved|copied|synced) (?:file )?\S+$")
DONE_REACH = 30
# what failed, named in quotes (Triton: `failed to load 'my_model' version 1: ...`), and a later
# line saying it was done (`successfully loaded 'my_model' version 1`)
_FAILED_TO_QUOTED = re.compile(r"(?i)\bfailed to \w+ (?P<name>'[^'\s]{2,80}'|\"[^\"\s]{2,80}\")")
_SUCCEEDED = re.compile(r"(?i)\bsuccess(?:fully)?\b")


def _done_after_all(log: Lines, candidates: list[Candidate]) -> None:
    """An error about a file, then a line saying that very file was done (W&B's file pusher:
    `upload_file exception .../wandb-summary.json?...: Connection reset by peer`, then `Uploaded
    file .../files/wandb-summary.json`): the program retried it on its own and it worked."""
    for c in candidates:
        if c.kind not in (Kind.CAUSE, Kind.ERROR) or c.score <= 0:
            continue
        files = set(_FILE_NAMED.findall(c.text[:FILE_NAMED_REACH]))
        quoted = _FAILED_TO_QUOTED.search(c.text[:FILE_NAMED_REACH])
        if not files and quoted is None:
            continue
        names = files | ({quoted.group("name")} if quoted is not None else set())
        end = c.block_end if c.block_end is not None else c.line
        for j in range(end + 1, min(len(log), end + 1 + DONE_REACH)):
            if not any(name in log.raw[j] for name in names):
                continue  # (a line without the name as printed has it in no form)
            body = log.body(j)
            if (_DONE_WITH.search(body) and any(name in body for name in files)) \
                    or (quoted is not None and quoted.group("name") in body and _SUCCEEDED.search(body)):
                c.score -= RETRIED_PENALTY
                break


# the rest of an error string with a newline in it, printed as the next line (klog's `E0709 ...
# getting credentials` then `: exec: executable gke-gcloud-auth-plugin not found`)
_CONTINUED = re.compile(r"^: \S")
# an XML error body (S3's and the GCS XML API's `<Error><Code>AccessDenied</Code><Message>`) whose
# message element opens at the end of the line: its text is on the next
_OPEN_MESSAGE = re.compile(r"<Message>\s*$")


# gcloud's error header alone on its line, the message below it (`ERROR: (gcloud.components.update) `)
_GCLOUD_ALONE = re.compile(r"^(?:ERROR: )?\(gcloud[\w.-]*\)\s*$")


# a google.rpc.Status printed as text below the line that introduced it (the Vertex AI pipeline
# components' `RuntimeError: Job failed with:`, then `code: 9`, then `message: "The DAG failed ..."`)
_STATUS_CODE = re.compile(r"^code: \d+$")
_STATUS_MESSAGE = re.compile(r'^message: "(?P<msg>.+?)"?$')


def _status_below(log: Lines, opener: Candidate) -> Candidate | None:
    """The message of the status printed just below a line ending with a colon (past noise
    between them), as a candidate."""
    below = [j for j in range(opener.line + 1, min(len(log), opener.line + STATUS_REACH))
             if log.body(j).strip() and not _interleaved(log, j)][:2]
    if len(below) < 2 or not _STATUS_CODE.match(log.body(below[0]).strip()):
        return None
    found = _STATUS_MESSAGE.match(log.body(below[1]).strip())
    if found is None:
        return None
    text = found.group("msg").replace("\\n", " ")  # (the text format escapes its newlines)
    cause = cause_in(text)
    return Candidate(below[1], Kind.ERROR, RULES_BY_NAME["generic.error"],
                     cause.category if cause is not None else None, text, SPECIFICITY[Kind.ERROR])


STATUS_REACH = 6


def _introduces(c: Candidate, following: str) -> bool:
    """Whether an error in general words ending with a colon (Metaflow's `Batch error:`) or an
    empty `message=` (gcloud's `ResponseError: code=403, message=`), or gcloud's header alone, has
    its detail on the next line: a line no rule calls another kind, nor a traceback. A cause in
    specific words takes only a list's first item (conda's `... solving:` then `- package x ...`,
    uv's `╰─▶ Because ...`), not whatever line came next."""
    wordy = c.rule is not None and c.rule.name in WORDY_STATUSES  # `INVALID_ARGUMENT: Multiple validation errors:`
    listed = c.kind is Kind.CAUSE and _LIST_ITEM.match(following) is not None
    if c.kind is Kind.WRAPPER and (not _WORDED.search(following) or following.startswith(("Traceback", "+ ", "$ "))):
        return False  # (Flyte's empty `Message: ` then `.`; Prefect's `... exception:` then its traceback)
    # (a wrapper too: gcloud's `Job [x] failed with error:` for a Dataproc job, then the job's error)
    if not (c.kind in (Kind.ERROR, Kind.WRAPPER) or wordy or listed) \
            or not (c.text.rstrip().endswith((":", "message=")) or _GCLOUD_ALONE.match(c.text)
                    or _RUBY_CLASS_END.search(c.text)) \
            or following.endswith(TRACEBACK_HEADER):
        return False
    labelled = label(following)
    return labelled is None or labelled[0].kind in (Kind.CAUSE, Kind.ERROR)


JOIN_REACH = 3
# RubyGems' `ERROR:  While executing gem ... (Gem::FilePermissionError)`: the message on the next line
_RUBY_CLASS_END = re.compile(r"\(\w+(?:::\w+)+\)$")
# (apt's `The following packages have unmet dependencies:` then ` docker-ce : Depends: containerd.io ...`)
_LIST_ITEM = re.compile(r"^(?:[-*•]|╰─▶|`->|\d+[.)]) |^\S+ : (?:Pre)?Depends: ")


def _interleaved(log: Lines, q: int) -> bool:
    """Whether line q is another logger's (a lower level) or noise, not the text going on."""
    if log.norm(q).level in ("INFO", "DEBUG", "WARNING"):
        return True
    labelled = label(log.body(q).strip()) if log.body(q).strip() else None
    return labelled is not None and labelled[0].kind is Kind.NOISE


def _join_continuation(log: Lines, c: Candidate) -> None:
    """An error line whose next line goes on with `: ...`, holds its open `<Message>`'s text or
    the detail it introduces (past interleaved lines) holds its cause there: joined, and the
    category the joined words name. A detail that introduces another in turn takes it too
    (gcloud's header alone, then `spec.template...[maxScale]:`, then the sentence)."""
    last = c.line
    for _ in range(JOINS):
        q = last + 1
        while q < len(log) and q <= last + JOIN_REACH \
                and (_interleaved(log, q) or not log.body(q).strip()):
            q += 1  # another logger's line or a progress bar between the error and its detail (or a
            # blank line: log entries carry none, so the detail may not depend on it)
        if q >= len(log) or q > last + JOIN_REACH or (c.kind is Kind.WRAPPER and q != last + 1):
            return  # (a wrapper's detail is the very next line, or none)
        if log.norm(q).wandb and not log.norm(c.line).wandb:
            return  # W&B's console lines are its client's, not the detail of another program's error
        following = log.body(q).strip()
        said = label(following) if following else None
        if following and _cut_in_quote(c.text) and not following.endswith(TRACEBACK_HEADER) \
                and (said is None or said[0].kind in (Kind.CAUSE, Kind.ERROR)):
            rest = following  # the terminal wrapped it where a quoted name begins: `Permission '` + `iam.x' denied`
        elif following and (_OPEN_MESSAGE.search(c.text) or _introduces(c, following)):
            rest = " " + following
        elif _CONTINUED.match(log.body(q)):
            rest = log.body(q).strip()
        else:
            return
        c.text = f"{c.text.rstrip()}{rest}"
        c.match = None
        cause = cause_in(rest)
        if cause is not None and cause.category:
            c.category = cause.category
        last = q


JOINS = 3


def _cut_in_quote(text: str) -> bool:
    """Whether a line ends where a quoted name opens (` '` with the quote not closed)."""
    return len(text) > 1 and text[-1] in "'\"" and text[-2] == " " and text.count(text[-1]) % 2 == 1


_NO_VERSIONS = re.compile(r"\(from versions: none\)|\bNo matching distribution found\b")
OFFLINE_REACH = 6


def _offline_index(candidates: list[Candidate]) -> None:
    """pip that could not reach its index retries, then finds no version at all (`WARNING:
    Retrying (Retry(total=0, ...)) after connection broken by 'NewConnectionError(...: Temporary
    failure in name resolution')'`, then `(from versions: none)`): the network is what failed."""
    for i, c in enumerate(candidates):
        if c.kind is not Kind.CAUSE or c.category != "dependency" or not _NO_VERSIONS.search(c.text):
            continue
        for j in range(i - 1, -1, -1):
            retry = candidates[j]
            if c.line - retry.line > OFFLINE_REACH:
                break
            cause = cause_in(retry.text) if retry.kind is Kind.TRANSIENT else None
            if cause is not None and cause.category == "network":
                candidates[j] = Candidate(retry.line, Kind.CAUSE, cause, "network", retry.text,
                                          max(c.score, 0.0) + 0.1, retry.match)
                break


TRACEBACK_AFTER_RETRY = 60
# a retry that says what failed and counts its attempts (`Training failed, retrying 1/3`): what it
# prints next is the traceback of that failure, and another attempt follows
_NEXT_ATTEMPT = re.compile(r"(?i)\b(?:failed|error)\b.*?\bretrying\b.*?\b\d+ ?(?:/|of) ?\d+\b")


def _only_its_traceback(log: Lines, retry: int, exception: int) -> bool:
    """Whether the lines between a retry line and an exception are that exception's traceback."""
    if exception - retry > TRACEBACK_AFTER_RETRY:
        return False
    started = False
    for j in range(retry + 1, exception):
        body = log.body(j)
        if body.strip() == TRACEBACK_HEADER:
            started = True
        elif body.strip() and not (started and body[:1] in " \t"):
            return False
    return started


def _apply_retries(log: Lines, candidates: list[Candidate]) -> None:
    """An error just before a retry line may recover: lower it (a later one is not retried). A
    retry that names an error of another kind (wandb-core's `api: retrying error: ... Client.Timeout
    exceeded` after a 403) retries that one, not the error before it."""
    transient = [c for c in candidates if c.kind is Kind.TRANSIENT]
    if not transient:
        return
    retries = [c.line for c in transient]
    for c in candidates:
        if c.kind not in (Kind.CAUSE, Kind.ERROR) or (c.rule is not None and c.rule.kind is Kind.INTRO):
            continue  # what a header announced as the error is not undone by its own `retrying.`
        last = c.block_end if c.block_end is not None else c.line
        k = bisect.bisect_right(retries, last)
        if k < len(retries) and retries[k] - last <= RETRY_REACH:
            named = cause_in(transient[k].text)
            if c.category is not None and named is not None and named.category not in (None, c.category):
                continue
            c.score -= RETRIED_PENALTY
        elif c.block_end is not None and k > 0 and _NEXT_ATTEMPT.search(transient[k - 1].text) \
                and _only_its_traceback(log, retries[k - 1], c.line):
            c.score -= RETRIED_PENALTY  # `Training failed, retrying 1/3`, then the traceback it retries
