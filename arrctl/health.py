"""Pure health rules and the three `check` formats (Nagios plugin line, JSON, Prometheus text)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from arrctl.kinds import CheckState, ErrorKind, SourceState
from arrctl.model import CATEGORIES, STATUSES, Row, SourceResult, epoch

FAILURE_SOURCES = ("runner", "vertex", "active", "completed")  # what pages (SPEC: CRITICAL)
# a build that failed or timed out is reported once too, as `[builds] failure_severity` says (issue 18)
BUILD_SEVERITY = {"warning": CheckState.WARNING, "critical": CheckState.CRITICAL}
NAGIOS_LIMIT = 8000  # bytes; Nagios truncates plugin output beyond 8 KB
FIRST_LINE_LIMIT = 1024  # bytes of the first line, perfdata included
WAITING_BUILD = {"QUEUED": "queued", "PENDING": "pending"}  # build statuses the queue limit covers
# a source failing for these can tell nothing about the pipeline: no judgement (UNKNOWN)
NO_JUDGEMENT_KINDS = frozenset({ErrorKind.CREDENTIALS, ErrorKind.CONFIGURATION})


@dataclass(frozen=True)
class Thresholds:
    """Configured limits for the WARNING rules."""

    heartbeat_warn_s: float = 600.0
    queued_warn_s: float = 600.0
    build_failure_severity: str = "warning"
    """warning, critical or ignore: what a build that failed or timed out since the last check is."""


@dataclass
class Verdict:
    """The outcome of one check."""

    code: CheckState
    summary: str
    problems: list[dict[str, Any]] = field(default_factory=list)
    sources: dict[str, SourceResult] = field(default_factory=dict)
    new_failures: int = 0
    skipped_failures: int = 0
    """Failures a first check recorded as seen without reporting them (they ended before the window)."""

    @property
    def state(self) -> str:
        """OK, WARNING, CRITICAL or UNKNOWN."""
        return CheckState(self.code).name


def failure_keys(results: dict[str, SourceResult], builds: str = "warning") -> list[tuple[str, str]]:
    """(source, id) of the failed runner executions, Vertex jobs, W&B runs (and, unless `builds` is
    "ignore", builds) this check may report.

    Only rows that arrived in this refresh (rows shown from memory were seen before), even from a
    source with a failing region; and an item whose logs are read only once its root error is known
    (`extra.logs_unread`: a later check pages it with the error rather than this one without).
    """
    return [(s, row["id"]) for s, r in results.items() if s in FAILURE_SOURCES or (s == "builds" and builds in
                                                                                  BUILD_SEVERITY)
            for row in r.rows if is_failure(s, row) and row["id"] not in r.from_memory
            and not row["extra"].get("logs_unread") and (s != "runner" or row["message"])]


def is_failure(source: str, row: Row) -> bool:
    """A failure `check` reports: FAILED, and a runner execution or a build that timed out (SPEC)."""
    return row["status"] == "FAILED" or (source in ("runner", "builds") and row["status"] == "TIMEOUT")


def failure_ends(results: dict[str, SourceResult], builds: str = "warning") -> dict[tuple[str, str], float | None]:
    """The failures of `failure_keys` with when each ended (epoch seconds; its creation if the end is
    not known; None if neither is), for the first check's window."""
    rows = _failure_rows(results, builds)
    return {key: epoch(row["finished"]) or epoch(row["created"]) for key, row in rows.items()}


def unfinished_failures(results: dict[str, SourceResult], builds: str = "warning") -> set[tuple[str, str]]:
    """The failures of `failure_keys` whose end is not known (`failure_ends` gives their creation)."""
    return {key for key, row in _failure_rows(results, builds).items() if not epoch(row["finished"])}


def _failure_rows(results: dict[str, SourceResult], builds: str) -> dict[tuple[str, str], Row]:
    rows = {(s, row["id"]): row for s, r in results.items() for row in r.rows}
    return {key: rows[key] for key in failure_keys(results, builds)}


def judge(results: dict[str, SourceResult], new_failures: set[tuple[str, str]], now: float,
          limits: Thresholds, *, persistent: bool = True, skipped: int = 0, late: int = 0,
          first_window_s: float = 3600.0, disagreements: list[dict[str, Any]] | None = None) -> Verdict:
    """Apply the rules: new failures are CRITICAL; sources down, silent runs, long queues WARNING.

    `skipped` failures were recorded as seen by a first check (ended over `first_window_s` ago); `late`
    ones came into view after it but had ended over `first_window_s` before it (store.Store.claim).
    Without a persistent store nothing is reported as new: it cannot be told from what was.
    """
    problems: list[dict[str, Any]] = []
    in_view = 0
    for source, result in results.items():
        for row in result.rows:
            if (source, row["id"]) in new_failures and is_failure(source, row):
                if source == "builds" and limits.build_failure_severity not in BUILD_SEVERITY:
                    continue
                in_view += 1
                if not persistent:
                    continue
                message = row["message"] or f"{row['raw_status'] or 'failed'} (no error text)"
                if source == "builds":
                    problems.append(_problem(BUILD_SEVERITY[limits.build_failure_severity], "build_failure",
                                             source, row, message))
                else:
                    problems.append(_problem(CheckState.CRITICAL, "new_failure", source, row, message))
    blind: list[dict[str, Any]] = []  # sources whose failure (credentials, configuration) leaves nothing to judge
    for source, result in results.items():
        if result.state != SourceState.OK:
            problems.append(problem("WARNING", f"source_{result.state}", source, None,
                                    f"{source} {result.state}: {result.error}"))
            if result.error_kind in NO_JUDGEMENT_KINDS:
                blind.append(problems[-1])
    for row in results.get("active", SourceResult("active")).rows:
        beat = epoch(row["extra"].get("heartbeat_at")) if row["status"] == "RUNNING" else None
        if beat is not None and now - beat > limits.heartbeat_warn_s:
            problems.append(_problem(CheckState.WARNING, "stale_heartbeat", "active", row,
                                     f"no heartbeat for {_ago(now - beat)} (limit {_ago(limits.heartbeat_warn_s)})"))
    for row in results.get("builds", SourceResult("builds")).rows:
        # PENDING (e.g. waiting for approval) is waiting as much as QUEUED: the same limit
        created = epoch(row["created"]) if row["status"] in WAITING_BUILD else None
        if created is not None and now - created > limits.queued_warn_s:
            problems.append(_problem(CheckState.WARNING, "queued_build", "builds", row,
                                     f"{WAITING_BUILD[row['status']]} for {_ago(now - created)} "
                                     f"(limit {_ago(limits.queued_warn_s)})"))
    problems.extend(disagreements or [])  # the systems of a launch disagree: new ones only (disagree.py)
    criticals = [p for p in problems if p["severity"] == "CRITICAL"]
    warnings = [p for p in problems if p["severity"] == "WARNING"]
    all_down = bool(results) and all(r.state != SourceState.OK for r in results.values())
    running = sum(1 for r in results.values() for row in r.rows if row["status"] == "RUNNING")
    if all_down:
        code = CheckState.UNKNOWN
        summary = "no source answered, cannot judge: " + "; ".join(p["message"] for p in warnings)
    elif not persistent:
        code = CheckState.UNKNOWN
        summary = "state directory unusable: cannot tell new failures from ones already reported"
        if in_view:
            summary += f" ({in_view} failure{'s' if in_view > 1 else ''} in view)"
    elif blind and not criticals:
        code = CheckState.UNKNOWN
        summary = "configuration or credentials prevent a judgement: " + "; ".join(p["message"] for p in blind)
    elif criticals:
        code = CheckState.CRITICAL
        summary = f"{len(criticals)} new failure{'s' if len(criticals) > 1 else ''}: " + "; ".join(
            f"{p['source']} {p['id']}: {p['message']}" for p in criticals)
    elif warnings:
        code = CheckState.WARNING
        summary = f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}: " + "; ".join(
            _about(p) for p in warnings)
    else:
        code = CheckState.OK
        summary = f"{len(results)} sources answered, {running} running, no new failures"
    hidden = sum(len(r.hidden) for r in results.values())
    if hidden:  # a filter (--status, --region...) left these out of the judgement
        summary += f"; {hidden} row{'s' if hidden > 1 else ''} hidden by filters"
    if skipped:
        summary += (f"; first check: {skipped} failure{'s' if skipped > 1 else ''} that ended over "
                    f"{_ago(first_window_s)} ago recorded as seen, not paged")
    if late:
        summary += (f"; {late} failure{'s' if late > 1 else ''} that ended over {_ago(first_window_s)} before "
                    f"the first check came into view, recorded as seen, not paged")
    return Verdict(code, summary, problems, results, len(criticals), skipped + late)


def _about(problem: dict[str, Any]) -> str:
    """A problem's message with the item it is about (a source's own problem names the source already)."""
    return f"{problem['source']} {problem['id']}: {problem['message']}" if problem.get("id") else problem["message"]


def unknown(message: str) -> Verdict:
    """A check that could not judge (bad configuration, no credentials)."""
    return Verdict(CheckState.UNKNOWN, message, [problem("UNKNOWN", "config", None, None, message)])


def problem(severity: str, kind: str, source: str | None, id: str | None, message: str,
            category: str | None = None, url: str | None = None) -> dict[str, Any]:
    """One problem of a check, with every key SPEC names (`category` only for a failure)."""
    return {"severity": severity, "kind": kind, "source": source, "id": id, "message": message,
            "category": category, "url": url}


def _problem(code: CheckState, kind: str, source: str, row: Row, message: str) -> dict[str, Any]:
    category = (row.get("category") or "unknown") if kind in ("new_failure", "build_failure") else None
    return problem(CheckState(code).name, kind, source, row["id"], message, category, row["url"])


def _ago(seconds: float) -> str:
    from arrctl.render import human_duration

    return human_duration(seconds)


def _number(value: float) -> str:
    """A plain decimal (perfdata and Prometheus never get scientific notation)."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _flat(text: str) -> str:
    """One line, without the `|` that starts Nagios perfdata."""
    return " ".join(str(text).replace("|", "/").split())


def nagios(verdict: Verdict) -> str:
    """`ARRCTL <STATE> - <summary> | <perfdata>` then one long-output line per problem; under 8 KB."""
    results = verdict.sources
    running = sum(1 for r in results.values() for row in r.rows if row["status"] == "RUNNING")
    ok = sum(1 for r in results.values() if r.state == SourceState.OK)
    # plugin range rules: a threshold N alerts outside 0..N, so crit 0 alerts on one new failure
    perf = [f"'new_failures'={verdict.new_failures};;0;0", f"'running'={running};;;0",
            f"'sources_ok'={ok};;;0;{len(results)}", f"'skipped_failures'={verdict.skipped_failures};;;0"]
    perf += [f"'{s}_time'={_number(round(r.took_s, 3))}s;;;0" for s, r in results.items()]
    head = f"ARRCTL {verdict.state} - {_flat(verdict.summary)}"
    tail = " | " + " ".join(perf)
    room = FIRST_LINE_LIMIT - len(tail.encode()) - len("…".encode())
    if len(head.encode()) + len(tail.encode()) > FIRST_LINE_LIMIT:  # bytes, not characters
        head = head.encode()[:room].decode("utf-8", "ignore") + "…"
    lines = [head + tail]
    size = len(lines[0].encode()) + 1
    for problem in verdict.problems:
        line = f"{problem['severity']}: {_flat(problem['message'])}"
        if problem.get("id"):
            line = f"{problem['severity']}: {problem['source']} {problem['id']}: {_flat(problem['message'])}"
        if size + len(line.encode()) + 1 > NAGIOS_LIMIT - 40:
            lines.append(f"... {len(verdict.problems) - len(lines) + 1} more problems")
            break
        lines.append(line)
        size += len(line.encode()) + 1
    return "\n".join(lines)


def as_json(verdict: Verdict) -> dict[str, Any]:
    """The SPEC check object."""
    return {"state": verdict.state, "code": verdict.code, "summary": verdict.summary,
            "problems": verdict.problems,
            "sources": {s: {k: v for k, v in r.record().items() if k not in ("type", "source")}
                        for s, r in verdict.sources.items()}}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def prometheus(verdict: Verdict, now: float) -> str:
    """Prometheus text exposition format: HELP and TYPE once per metric, no timestamps."""
    out: list[str] = []

    def metric(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            number = "NaN" if isinstance(value, float) and math.isnan(value) else _number(value)
            out.append(f"{name}{{{text}}} {number}" if text else f"{name} {number}")

    results = verdict.sources
    metric("arrctl_source_up", "Whether the source answered in this check (1) or failed or timed out (0).",
           [({"source": s}, 1 if r.state == SourceState.OK else 0) for s, r in results.items()])
    metric("arrctl_source_duration_seconds", "Seconds the source's worker took in this check.",
           [({"source": s}, round(r.took_s, 3)) for s, r in results.items()])
    metric("arrctl_source_stale_seconds", "Age of the rows shown from memory for a source that did not answer (0 when fresh).",
           [({"source": s}, round(r.stale_s or 0.0, 1)) for s, r in results.items()])
    counts: list[tuple[dict[str, str], float]] = []
    for s, r in results.items():
        for status in STATUSES:
            n = sum(1 for row in r.rows if row["status"] == status)
            if n:
                counts.append(({"source": s, "status": status}, n))
    metric("arrctl_rows", "Rows per source and normalised status.", counts)
    by_category = {c: 0 for c in CATEGORIES}  # every category, so that a series is there before it counts
    for found in verdict.problems:
        if found["kind"] == "new_failure":
            by_category[found["category"] or "unknown"] = by_category.get(found["category"] or "unknown", 0) + 1
    metric("arrctl_new_failures", "Failures first reported by this check, by the category of their root error.",
           [({"category": c}, n) for c, n in by_category.items()])
    metric("arrctl_new_build_failures", "Builds that failed or timed out, first reported by this check "
           "(as [builds] failure_severity says; 0 when it is ignore).",
           [({}, sum(1 for p in verdict.problems if p["kind"] == "build_failure"))])
    metric("arrctl_skipped_failures", "Failures a check recorded as seen without reporting them "
           "(they ended over [check] first_window_s before the first check).", [({}, verdict.skipped_failures)])
    metric("arrctl_problems", "Problems found by this check, by severity.",
           [({"severity": sev}, sum(1 for p in verdict.problems if p["severity"] == sev))
            for sev in ("CRITICAL", "WARNING", "UNKNOWN")])
    metric("arrctl_check_state", "Check state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", [({}, verdict.code)])
    metric("arrctl_check_timestamp_seconds", "When this check ran (Unix time).", [({}, round(now, 3))])
    return "\n".join(out) + "\n"
