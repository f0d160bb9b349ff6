"""What `get -o wide` adds to each source's table: columns read from a row's `extra`, `links` and `url`.

Pure. Each column is a header and a function of (row, now) giving the cell's text ("-" when the
row does not say).
"""

from __future__ import annotations

from typing import Any, Callable

from arrctl.model import Row, epoch

Cell = Callable[[Row, float], str]


def age(seconds: float | None) -> str:
    """How long ago, as kubectl's AGE column counts: `45s ago`, `5m3s ago`, `95m ago`, `5h30m ago`,
    `30h ago`, `3d4h ago`, `12d ago`; `-` when unknown."""
    if seconds is None:
        return "-"
    s = int(max(0.0, seconds))
    m, h, d = s // 60, s // 3600, s // 86400
    if s < 120:
        text = f"{s}s"
    elif m < 10:
        text = f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    elif h < 3:
        text = f"{m}m"
    elif h < 8:
        text = f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    elif h < 48:
        text = f"{h}h"
    elif d < 8:
        text = f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    else:
        text = f"{d}d"
    return f"{text} ago"


def age_of(ts: str | None, now: float) -> str:
    """`age` of an RFC 3339 time."""
    moment = epoch(ts)
    return age(None if moment is None else now - moment)


def _text(value: Any) -> str:
    return "-" if value is None or value == "" or value == [] else str(value)


def tasks(row: Row, now: float) -> str:
    """Cloud Run's task counts: `1/2` succeeded of all, then what else is not zero (`0/1 (1 running)`)."""
    extra = row["extra"]
    total = extra.get("task_count")
    if total is None:
        return "-"
    others = [f"{extra[key]} {key}" for key in ("running", "failed", "cancelled", "retried") if extra.get(key)]
    head = f"{extra.get('succeeded') or 0}/{total}"
    return f"{head} ({', '.join(others)})" if others else head


def heartbeat(row: Row, now: float) -> str:
    """How long ago a W&B run last beat."""
    return age_of(row["extra"].get("heartbeat_at"), now)


def links(row: Row, now: float) -> str:
    """`wandb_run=abc123 queue_item=q1`; lists joined by commas; `-` when nothing is known."""
    known = row.get("links") or {}
    parts = []
    for key, value in known.items():
        if value in (None, "", []):
            continue
        parts.append(f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}")
    return " ".join(parts) or "-"


def _extra(key: str) -> Cell:
    return lambda row, now: _text(row["extra"].get(key))


def _tags(row: Row, now: float) -> str:
    return ",".join(map(str, row["extra"].get("tags") or ())) or "-"


WANDB: list[tuple[str, Cell]] = [("USER", _extra("user")), ("TAGS", _tags), ("HEARTBEAT", heartbeat),
                                 ("STEP", _extra("step"))]
WIDE: dict[str, list[tuple[str, Cell]]] = {
    "runner": [("TASKS", tasks)],
    "builds": [("COMMIT", _extra("commit"))],
    "vertex": [("MACHINE", _extra("machine_type")), ("ACCELERATOR", _extra("accelerator"))],
    "active": WANDB,
    "completed": WANDB,
}


def wide(source: str, rows: list[Row]) -> list[tuple[str, Cell]]:
    """The columns `-o wide` adds for `source`: its own, LINKS when any row has some, then URL."""
    extra = list(WIDE.get(source, []))
    if any(links(r, 0.0) != "-" for r in rows):
        extra.append(("LINKS", links))
    return extra + [("URL", lambda row, now: _text(row["url"]))]
