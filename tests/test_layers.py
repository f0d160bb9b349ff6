"""The import graph of arrctl/ keeps its layers (docs/architecture.md, "Module map").

Every module is placed in one layer; a module imports only from its own layer or the layers
below it. The sandbox is a separate world: it imports nothing of arrctl but itself, and only the
command layer (which starts it for --demo) imports it. Imports are read with `ast`, so an import
inside a function counts the same as one at the top.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "arrctl"

# lowest first; a pattern ending in * covers a package and its modules
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("arrctl", "arrctl.lifeline", "arrctl.model", "arrctl.kinds", "arrctl.sanitize", "arrctl.textfit", "arrctl.ids",
              "arrctl.system")),
    ("core", ("arrctl.config", "arrctl.extract*", "arrctl.diff", "arrctl.columns", "arrctl.render",
              "arrctl.health", "arrctl.launch", "arrctl.links", "arrctl.disagree", "arrctl.filters",
              "arrctl.statefile", "arrctl.store", "arrctl.signals")),
    ("sources", ("arrctl.sources*",)),
    ("processes", ("arrctl.worker", "arrctl.supervisor")),
    ("drivers", ("arrctl.output", "arrctl.refresh", "arrctl.getting", "arrctl.watch", "arrctl.checking",
                 "arrctl.explain", "arrctl.launching", "arrctl.trace*", "arrctl.logs_cmd", "arrctl.doctor")),
    ("commands", ("arrctl.app", "arrctl.cli", "arrctl.options", "arrctl.completion", "arrctl.manpage")),
]
SANDBOX = "arrctl.sandbox*"
SANDBOX_USERS = "commands"
SHARED = ("arrctl.lifeline",)  # imports nothing of arrctl: both worlds may use it
CLOUD_LIBRARIES = ("google", "wandb", "grpc")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The modules `path` imports: `from a import b` counts as a.b when that is a module, else a."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in known else base)
    return found


def layer_of(module: str) -> int | None:
    for index, (_name, patterns) in enumerate(LAYERS):
        if any(fnmatch.fnmatchcase(module, p) or module == p.rstrip("*").rstrip(".") for p in patterns):
            return index
    return None


def is_sandbox(module: str) -> bool:
    return module == "arrctl.sandbox" or fnmatch.fnmatchcase(module, SANDBOX)


GRAPH = {name: imports(path, set(modules())) for name, path in modules().items()}


def test_every_module_has_one_place() -> None:
    unplaced = [m for m in GRAPH if layer_of(m) is None and not is_sandbox(m)]
    assert unplaced == [], "place new modules in LAYERS here and in docs/architecture.md"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not is_sandbox(m)))
def test_imports_go_down_the_layers(module: str) -> None:
    own = layer_of(module)
    assert own is not None
    upward = sorted(
        f"{target} ({LAYERS[layer][0]})" for target in GRAPH[module]
        if target.startswith("arrctl") and not is_sandbox(target)
        and (layer := layer_of(target)) is not None and layer > own
    )
    assert upward == [], f"{module} ({LAYERS[own][0]}) imports a higher layer"


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if not is_sandbox(m)))
def test_only_the_commands_start_the_sandbox(module: str) -> None:
    uses = sorted(t for t in GRAPH[module] if is_sandbox(t))
    if LAYERS[layer_of(module) or 0][0] != SANDBOX_USERS:
        assert uses == []


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if is_sandbox(m)))
def test_the_sandbox_depends_on_nothing_of_arrctl(module: str) -> None:
    assert sorted(t for t in GRAPH[module] if t.startswith("arrctl") and not is_sandbox(t) and t not in SHARED) == []


@pytest.mark.parametrize("module", SHARED)
def test_what_both_worlds_share_imports_nothing_of_arrctl(module: str) -> None:
    assert sorted(t for t in GRAPH[module] if t.startswith("arrctl")) == []


def test_cloud_libraries_only_in_sources() -> None:
    """The client libraries are imported in a worker (after the fork), by the sources; `watch`
    names them as strings to preload, which is no import here."""
    found = sorted(
        (m, t) for m, targets in GRAPH.items() for t in targets
        if t.split(".")[0] in CLOUD_LIBRARIES and layer_of(m) != 2 and not is_sandbox(m)
    )
    assert found == []


def test_the_graph_reader_sees_these_edges() -> None:
    """The test above would be blind if the reader missed imports: check it on known ones."""
    assert "arrctl.supervisor" in GRAPH["arrctl.refresh"]
    assert "arrctl.sources.clients" in GRAPH["arrctl.sources.runner"]  # inside a function
    assert "arrctl.ids" in GRAPH["arrctl.sources.itemlogs"]  # inside a function
    assert "arrctl.sandbox.scenario" in GRAPH["arrctl.completion"]
    assert "arrctl.sandbox.base" in GRAPH["arrctl.sandbox.vertex"]
    assert layer_of("arrctl.extract.rules") == layer_of("arrctl.config") == 1
    assert layer_of("arrctl.sources") == layer_of("arrctl.sources.gcp_errors") == 2
