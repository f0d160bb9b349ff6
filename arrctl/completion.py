"""Shell completion (click's `_ARRCTL_COMPLETE` protocol): sources, statuses, scenarios, remembered ids.

Completion runs on every Tab press: it reads only local files (the state store's last good rows,
read-only), never the network, and a missing or unreadable config or store means no ids, never
a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from click.shell_completion import CompletionItem

from arrctl.model import SOURCES, STATUSES


def _last_item(incomplete: str) -> tuple[str, str]:
    """`failed,ti` → (`failed,`, `ti`): comma-separated values complete their last item."""
    head, comma, last = incomplete.rpartition(",")
    return head + comma, last


def _offer(words: Iterable[str], incomplete: str, *, fold: bool = False) -> list[CompletionItem]:
    """The words that complete the last comma-separated item (not those already given before it).

    `fold`: any case matches, and a word is offered in the case being typed (lower by default).
    """
    prefix, last = _last_item(incomplete)
    norm = str.lower if fold else str
    taken = {norm(item) for item in prefix.split(",")}
    found = []
    for word in words:
        shown = (word.upper() if last[:1].isupper() else word.lower()) if fold else word
        if norm(shown) not in taken and norm(shown).startswith(norm(last)):
            found.append(CompletionItem(prefix + shown))
    return found


def sources(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """Source names (SOURCE arguments)."""
    return _offer(SOURCES, incomplete)


def statuses(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """`--status` values, in the case being typed (lower case by default), comma lists too."""
    return _offer(STATUSES, incomplete, fold=True)


def scenarios(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """The sandbox's shipped scenarios (`sandbox serve --scenario`)."""
    from arrctl.sandbox.scenario import available

    return [CompletionItem(name) for name in available() if name.startswith(incomplete)]


def remembered(ctx: Any, wanted: Iterable[str] = SOURCES) -> dict[str, list[Any]]:
    """The rows of the last good refresh of each source, of the memory the command line points at."""
    try:
        root = ctx.find_root().params
        env = os.environ
        from arrctl.app import demo_config
        from arrctl.config import default_config_path, default_state_dir, load_config
        from arrctl.refresh import Endpoints, memory_scope
        from arrctl.store import remembered_rows

        state = root.get("state_dir")
        base = Path(state) if state else default_state_dir(env)
        if root.get("demo"):  # the same memory as `App.session` keys the demo's by
            config = demo_config()
            endpoints = Endpoints(memory=f"demo:{env.get('ARRCTL_SANDBOX_SCENARIO', 'default')}")
            base = base / "demo"
        else:
            path = root.get("config_path")
            explicit = path is not None or bool(env.get("ARRCTL_CONFIG"))
            config = load_config(Path(path) if path else default_config_path(env), env, explicit=explicit)
            endpoints = Endpoints(gcp=env.get("ARRCTL_GCP_ENDPOINT") or None, wandb=env.get("WANDB_BASE_URL") or None)
        rows = remembered_rows(base, memory_scope(config, endpoints))
    except Exception:  # noqa: BLE001 — a bad config or store: nothing to offer, and no traceback on Tab
        return {}
    return {s: rows[s] for s in wanted if s in rows}


def _ids(ctx: Any, incomplete: str, wanted: Iterable[str], names: bool = False) -> list[CompletionItem]:
    """Remembered ids (and names) starting with `incomplete`, each with its source and status as help."""
    from arrctl.render import clean, display_name

    seen: dict[str, CompletionItem] = {}
    for source, rows in remembered(ctx, wanted).items():
        for row in rows:
            shown = display_name(row)
            for value in (row["id"], row["name"]) if names else (row["id"],):
                if isinstance(value, str) and value.startswith(incomplete) and value not in seen:
                    about = f" {shown}" if shown and shown != value else ""
                    seen[value] = CompletionItem(clean(value), help=clean(f"{source} {row['status']}{about}"))
    return list(seen.values())


def ids(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """Ids of every source from the last refresh (e.g. for a command that takes any item)."""
    return _ids(ctx, incomplete, SOURCES)


def executions(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """Runner execution names from the last refresh (`explain EXECUTION`)."""
    return _ids(ctx, incomplete, ("runner",))


def names(ctx: Any, param: Any, incomplete: str) -> list[CompletionItem]:
    """Ids and names from the last refresh (`--name GLOB`)."""
    return _ids(ctx, incomplete, SOURCES, names=True)
