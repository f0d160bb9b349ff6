"""The five data sources. Each module has pure `parse_*` functions and a thin `fetch`.

A source module exposes `fetch(ctx: FetchContext, emit: Emitter) -> None`. It runs inside a
forked worker process (so it may import cloud libraries and block); it sends rows as they
arrive (per region when it can) and raises `SourceError` with a one-line reason on failure.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

from arrctl.kinds import ErrorKind, kind_of
from arrctl.model import Row, TerminalFact

if TYPE_CHECKING:
    from arrctl.config import Config


class SourceError(Exception):
    """A source failed; the message is the one-line reason shown to the user, `kind` what it is about
    (given, else the kind of a `Reason` message, else OTHER). Of kind TIMEOUT (the service did not
    answer in time), the source's state is `timeout`."""

    def __init__(self, message: str, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.kind = kind or kind_of(message)


class Emitter(Protocol):
    """How a fetch reports to the supervisor (over the worker's pipe)."""

    def plan(self, parts: list[str]) -> None:
        """Declare the parts (e.g. regions) this fetch expects to answer."""

    def rows(self, rows: list[Row], part: str | None = None) -> None:
        """Send rows; `part` names the region they complete (None: not partitioned)."""

    def facts(self, facts: list[TerminalFact]) -> None:
        """Send terminal facts (model.TerminalFact): what memory keeps of items that ended."""

    def results(self, results: list[dict[str, Any]]) -> None:
        """Send what a look-up found for its command, which is no terminal fact and is never
        remembered: explain's analysis, launch's start and its log evidence, doctor's probes,
        the state and new lines `logs` follows."""

    def call(self, api: str, n: int = 1) -> None:
        """Count API calls by service ("run", "logging", ...), for the benchmarks."""

    def log_reads(self, report: dict[str, Any]) -> None:
        """How this fetch's log reads went, for the shared backoff in the store:
        {"cut": {id: reason}, "read": [ids read to the end], "called": bool (Cloud Logging was
        called: its project-wide 429 hold is updated), "rate_limited": bool}."""


@dataclass(frozen=True)
class FetchContext:
    """Everything a fetch needs; built by the supervisor before forking."""

    config: Config
    known_terminal: frozenset[str] = frozenset()  # ids whose terminal facts are already stored
    deadline_s: float = 30.0
    call_timeout_s: float = 10.0  # per-request socket timeout; the kill enforces the deadline
    gcp_endpoint: str | None = None  # ARRCTL_GCP_ENDPOINT
    wandb_base_url: str | None = None  # WANDB_BASE_URL
    extra: dict[str, Any] = field(default_factory=dict)
    log_retry: dict[str, tuple[int, float, str | None]] = field(default_factory=dict)
    """Ids whose log reads were cut short: (times so far, seconds until the next try, last reason)."""
    logging_hold_s: float = 0.0
    """Seconds every Cloud Logging read of the project must still wait (after a 429)."""


def fetcher(source: str) -> Callable[[FetchContext, Emitter], None]:
    """The fetch function of a source, imported lazily (cloud libraries are heavy)."""
    module = importlib.import_module(f"arrctl.sources.{source}")
    return module.fetch  # type: ignore[no-any-return]
