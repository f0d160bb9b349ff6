"""Fault specs `SERVICE:KIND[:ARG]` for the sandbox, parsed into plain data (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

SERVICES: tuple[str, ...] = ("run", "vertex", "build", "logging", "wandb", "storage")
KINDS: tuple[str, ...] = ("latency", "hang", "status", "malformed", "trickle", "pages")
KINDS_HELP = "latency:SECONDS, hang, status:CODE, malformed, trickle[:SECONDS_PER_BYTE], pages:N"
ENV_VAR = "ARRCTL_SANDBOX_FAULTS"
TRICKLE_DEFAULT_S = 0.05


@dataclass(frozen=True)
class Fault:
    """One switched-on fault of one service."""

    service: str  # run | vertex | build | logging | wandb | storage
    kind: str  # latency | hang | status | malformed | trickle | pages
    arg: float | int | None = None  # seconds (latency, trickle), HTTP code (status), N (pages)

    def spec(self) -> str:
        """The SERVICE:KIND[:ARG] text that parses back into this fault."""
        return ":".join([self.service, self.kind] + ([] if self.arg is None else [f"{self.arg:g}"]))


def parse_fault(spec: str) -> Fault:
    """Parse one `SERVICE:KIND[:ARG]`; ValueError with a one-line reason when it is wrong."""
    text = spec.strip()
    parts = text.split(":")
    if len(parts) < 2 or parts[0] not in SERVICES:
        raise ValueError(
            f"bad fault spec {spec!r}: expected SERVICE:KIND[:ARG] with SERVICE one of "
            f"{', '.join(SERVICES)}")
    service, kind, args = parts[0], parts[1], parts[2:]
    if kind not in KINDS:
        raise ValueError(f"bad fault spec {spec!r}: KIND must be one of {KINDS_HELP}")
    if len(args) > 1:
        raise ValueError(f"bad fault spec {spec!r}: {kind} takes at most one argument")
    arg = args[0] if args else None
    if kind in ("hang", "malformed"):
        if arg is not None:
            raise ValueError(f"bad fault spec {spec!r}: {kind} takes no argument")
        return Fault(service, kind)
    if kind == "latency":
        return Fault(service, kind, _seconds(spec, kind, arg, "SECONDS"))
    if kind == "trickle":
        if arg is None:
            return Fault(service, kind, TRICKLE_DEFAULT_S)
        return Fault(service, kind, _seconds(spec, kind, arg, "SECONDS_PER_BYTE"))
    if kind == "status":
        code = _integer(arg)
        if code is None or not 400 <= code <= 599:
            raise ValueError(
                f"bad fault spec {spec!r}: status needs CODE, an HTTP error status 400-599")
        return Fault(service, kind, code)
    pages = _integer(arg)
    if pages is None or pages < 1:
        raise ValueError(f"bad fault spec {spec!r}: pages needs N, an integer >= 1")
    return Fault(service, kind, pages)


def _seconds(spec: str, kind: str, arg: str | None, name: str) -> float:
    """A finite number of seconds >= 0, or the one-line ValueError."""
    try:
        value = float(arg) if arg is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"bad fault spec {spec!r}: {kind} needs {name}, a number >= 0")
    return value


def _integer(arg: str | None) -> int | None:
    """The integer in arg, or None."""
    try:
        return int(arg) if arg is not None else None
    except ValueError:
        return None


def split_env(value: str | None) -> list[str]:
    """The specs of a comma separated ARRCTL_SANDBOX_FAULTS value (blank items skipped)."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def faults_from_env(environ: Mapping[str, str]) -> list[str]:
    """The fault specs named by ARRCTL_SANDBOX_FAULTS in environ."""
    return split_env(environ.get(ENV_VAR))


def parse_faults(specs: Iterable[str]) -> list[Fault]:
    """Parse every spec; the first bad one raises ValueError."""
    return [parse_fault(spec) for spec in specs]


class FaultTable:
    """The faults in force, by service; a later fault of the same kind replaces an earlier one."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._by_service: dict[str, dict[str, Fault]] = {}
        for fault in faults:
            self._by_service.setdefault(fault.service, {})[fault.kind] = fault

    def get(self, service: str | None, kind: str) -> Fault | None:
        """The fault of this kind on this service, if switched on."""
        return self._by_service.get(service or "", {}).get(kind)

    def specs(self) -> list[str]:
        """Every fault in force, as specs."""
        return [f.spec() for kinds in self._by_service.values() for f in kinds.values()]
