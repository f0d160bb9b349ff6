"""`arrctl trace` output: the NDJSON records of SPEC and a small text tree (pure)."""

from __future__ import annotations

from typing import Any, Iterable

from arrctl.model import epoch
from arrctl.trace.chain import KIND_WORDS, VIA_WORDS, Found, Trace

def disagreements(found: Found, trace: Trace, now: float, start_timeout_s: float) -> list[str]:
    """Where the systems of the traced hops disagree (disagree.py's rules), one line each (pure)."""
    from arrctl import disagree
    from arrctl.links import join_links
    from arrctl.model import SourceResult

    ids = {hop.id for hop in trace.hops if hop.found}
    pick = lambda rows, source=None: [r for r in rows if r["id"] in ids and (source is None or r["source"] == source)]  # noqa: E731
    results = {"runner": SourceResult("runner", rows=pick(found.executions.values())),
               "vertex": SourceResult("vertex", rows=pick(found.jobs.values())),
               "active": SourceResult("active", rows=pick(found.runs.values(), "active")),
               "completed": SourceResult("completed", rows=pick(found.runs.values(), "completed"))}
    join_links(results)
    return [f"{KIND_WORDS[_KIND_OF[d.row['source']]]} {d.row['id']}: {d.message}"
            for d in disagree.find(results, now, start_timeout_s)]


_KIND_OF = {"runner": "execution", "vertex": "vertex_job", "active": "wandb_run", "completed": "wandb_run"}


def records(trace: Trace) -> list[dict[str, Any]]:
    """The NDJSON records: one `hop` per hop, then the `trace` record."""
    return [hop.record() for hop in trace.hops] + [trace.record()]


def text_lines(trace: Trace, now: float, style: Any = None, notes: Iterable[str] = ()) -> list[str]:
    """A small tree, one hop per line (status, age, root error, how it was tied in), its link below."""
    from arrctl.render import Style, clean, human_duration

    style = style or Style(False)
    depth: dict[str | None, int] = {}
    lines: list[str] = []
    for hop in trace.hops:
        level = depth[hop.parent] + 1 if hop.parent is not None and hop.parent in depth else 0
        if hop.id is not None and hop.found:
            depth.setdefault(hop.id, level)
        lead = "   " * (level - 1) + "└─ " if level else ""
        since = epoch(hop.since)
        age = f"{human_duration(now - since)} ago" if since is not None else ""
        proof = f"[{VIA_WORDS[hop.via]}]" if hop.via else ""
        status = style.status(hop.status) if hop.status != "UNKNOWN" else style.warn("UNKNOWN")
        words = [f"{KIND_WORDS[hop.kind]} {clean(hop.id) if hop.id else '?'}", status]
        if age:
            words.append(age)
        if hop.message:
            words.append(clean(hop.message, 160))
        if hop.category and hop.category != "unknown" and hop.status in ("FAILED", "TIMEOUT"):
            words.append(f"({hop.category})")
        if proof:
            words.append(style.dim(proof))
        lines.append(lead + "  ".join(words))
        if hop.url:
            lines.append(("   " * level) + "   " + style.dim(clean(hop.url)))
    for note in notes:  # the systems disagree about this launch
        lines.append(style.warn("! ") + clean(note))
    if trace.unknown:
        lines.append(style.warn(f"not looked up: {', '.join(KIND_WORDS[k] for k in trace.unknown)}"))
    elif trace.missing:
        lines.append(f"chain incomplete: no {', '.join(KIND_WORDS[k] for k in trace.missing)} found")
    return lines
