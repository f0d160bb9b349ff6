"""The fault matrix: every sandbox fault kind x every faulted service, through `arrctl --demo get --json`.

Usage: python bench/faults.py [--deadline S] [--only SERVICE ...] [--kinds KIND ...]
Prints the matrix (rows: services, columns: fault kinds, cells: the faulted source's state and
the case's wall time), then one line per case. Exit 1 when any case broke its expectation.
tests/test_fault_matrix.py imports the case logic from here, so the bench and the tests judge
the same way.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
ARRCTL = Path(sys.executable).with_name("arrctl")
SOURCES = ("runner", "builds", "vertex", "active", "completed")
SERVICES = ("run", "vertex", "build", "logging", "wandb")
# Which sources a fault on each service must show as failed (logging: the runner's log read).
AFFECTED: dict[str, tuple[str, ...]] = {
    "run": ("runner",), "vertex": ("vertex",), "build": ("builds",),
    "logging": ("runner",), "wandb": ("active", "completed"),
}
DEFAULT_DEADLINE_S = 3.0
# Environment the cases must not inherit (a developer's config, endpoints, faults, scenario).
SCRUBBED = ("ARRCTL_CONFIG", "ARRCTL_STATE_DIR", "ARRCTL_GCP_ENDPOINT", "WANDB_BASE_URL",
            "ARRCTL_SANDBOX_FAULTS", "ARRCTL_SANDBOX_SCENARIO", "GOOGLE_CLOUD_PROJECT",
            "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "NO_COLOR")


@dataclass(frozen=True)
class Kind:
    """One column of the matrix: a fault kind with its argument, and whether get must still succeed."""

    label: str
    spec: str  # KIND[:ARG], `{late}` replaced by a latency beyond the deadline
    succeeds: bool

    def fault(self, service: str, deadline_s: float) -> str:
        """The SERVICE:KIND[:ARG] spec of this kind on a service."""
        return f"{service}:" + self.spec.format(late=f"{deadline_s + 3:g}")


KINDS: tuple[Kind, ...] = (
    Kind("latency>D", "latency:{late}", False),
    Kind("latency<D", "latency:0.3", True),
    Kind("hang", "hang", False),
    Kind("403", "status:403", False),
    Kind("429", "status:429", False),
    Kind("503", "status:503", False),
    Kind("malformed", "malformed", False),
    Kind("trickle", "trickle", False),
    Kind("pages:3", "pages:3", True),
)
KINDS_BY_LABEL = {kind.label: kind for kind in KINDS}


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without anything that would point a case elsewhere, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.setdefault("ARRCTL_KILL_GRACE", "0.1")
    env.update(extra)
    return env


def run_get(state_dir: Path, deadline_s: float, faults: str = "", timeout_s: float = 30.0,
            args: tuple[str, ...] = ()) -> tuple[int, list[dict[str, Any]], str, float, float]:
    """(exit code, NDJSON records, stderr, wall seconds, epoch at start) of one `arrctl --demo get --json`."""
    env = clean_env(ARRCTL_SANDBOX_FAULTS=faults) if faults else clean_env()
    began_epoch, began = time.time(), time.monotonic()
    done = subprocess.run(
        [str(ARRCTL), "--state-dir", str(state_dir), "--demo", "get", "--json", "--deadline", f"{deadline_s:g}",
         *args], capture_output=True, env=env, timeout=timeout_s, check=False)
    wall = time.monotonic() - began
    records = [orjson.loads(line) for line in done.stdout.splitlines()]
    return done.returncode, records, done.stderr.decode(errors="replace"), wall, began_epoch


@dataclass
class Baseline:
    """A clean refresh into a state directory: the rows every case is compared with."""

    state_dir: Path
    rows: dict[str, list[dict[str, Any]]]
    started: float  # epoch just before the clean run started
    took_s: dict[str, float] = field(default_factory=dict)  # each source's time in the clean run
    wall_s: float = 0.0  # the clean command's wall time (start-up, sandbox and refresh)

    @property
    def slowest_s(self) -> float:
        """The slowest source of the clean refresh: how fast this machine is right now."""
        return max(self.took_s.values(), default=0.0)


# A case's deadline is this many times the slowest clean source (so a loaded machine gets a
# longer one), never below the floor and never above the cap. A case must then be conclusive by
# construction: a source that answers (ok or an error) has several times what it needs, a fault
# that must time out (hang, latency beyond the deadline, trickle) can never answer in time.
DEADLINE_FACTOR = 3.0
DEADLINE_CAP_S = 30.0


def scaled_deadline(baseline: Baseline, floor_s: float) -> float:
    """The deadline for the cases: DEADLINE_FACTOR x the slowest clean source, within [floor, cap]."""
    return round(min(DEADLINE_CAP_S, max(floor_s, DEADLINE_FACTOR * baseline.slowest_s)), 1)


def make_baseline(root: Path, deadline_s: float = 60.0) -> Baseline:
    """One clean `get` into root/seed (every source must answer), and a copy without runner facts."""
    seed = root / "seed"
    code, records, stderr, wall, began = run_get(seed, deadline_s, timeout_s=deadline_s + 60)
    sources = {r["source"]: r for r in records if r["type"] == "source"}
    if code != 0 or any(sources[s]["state"] != "ok" for s in SOURCES):
        raise RuntimeError(f"the clean refresh failed (exit {code}): {sources} {stderr[-500:]}")
    # Without the runner's terminal facts, the next refresh must read the logs again: the only
    # way a logging fault can show.
    no_facts = root / "seed-no-runner-facts"
    shutil.copytree(seed, no_facts)
    db = sqlite3.connect(no_facts / "demo" / "state.sqlite3")
    with db:
        db.execute("DELETE FROM terminal WHERE source='runner'")
    db.close()
    return Baseline(seed, rows_by_source(records), began,
                    {s: float(sources[s]["took_s"]) for s in SOURCES}, wall)


def rows_by_source(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The row records of a refresh, per source, in output order."""
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in SOURCES}
    for record in records:
        if record["type"] == "row":
            out[record["source"]].append(record)
    return out


_TIMES = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?")


ACTIVE = ("QUEUED", "PENDING", "RUNNING")


def unexplained_differences(source: str, rows: list[dict[str, Any]], case_start: float,
                            clean: list[dict[str, Any]], clean_start: float) -> list[str]:
    """How a case's rows differ from the clean refresh's in ways the scenario's motion cannot explain.

    The scenario keeps moving (its times are offsets from each sandbox's start) and how far it
    has moved when a refresh reads it depends on the machine's speed, in either refresh. So,
    whichever of the two came later in the scenario: an item active in one may have ended (or
    moved from W&B's active list to the completed one) in the other; an item that appeared or
    ended during a run of the scenario may be absent from the other refresh, and push as many
    old items out of a limited list. An item finished in both must look the same (status and
    message; times inside messages move with the sandbox's start). Nothing else may differ.
    """
    problems = _one_way(source, rows, case_start, clean, clean_start, "is not in the clean refresh")
    problems += _one_way(source, clean, clean_start, rows, case_start, "is missing")
    now = {r["id"]: r for r in rows}
    for old in clean:
        new = now.get(old["id"])
        if new is None or old["status"] in ACTIVE or new["status"] in ACTIVE:
            continue
        if new["status"] != old["status"]:
            problems.append(f"{source}: {old['id']} is {new['status']}, was {old['status']}")
        elif _TIMES.sub("<time>", new["message"] or "") != _TIMES.sub("<time>", old["message"] or ""):
            problems.append(f"{source}: {old['id']} says {new['message']!r}, said {old['message']!r}")
    return problems


ACTIVE = ("QUEUED", "PENDING", "RUNNING")


def _moved(row: dict[str, Any], start: float) -> bool:
    """Whether an item appeared or ended while this refresh's scenario ran (or is still active)."""
    from arrctl.model import epoch

    if row["status"] in ACTIVE:
        return True
    return any((epoch(row.get(key)) or 0.0) >= start for key in ("created", "finished"))


def _one_way(source: str, rows: list[dict[str, Any]], start: float, other: list[dict[str, Any]],
             other_start: float, what: str) -> list[str]:
    """Rows absent from `other` that no motion of the scenario explains."""
    other_ids = {r["id"] for r in other}
    absent = [r for r in rows if r["id"] not in other_ids]
    ids = {r["id"] for r in rows}
    # old items that a newer one may have pushed out of the other refresh's limited list
    pushers = sum(1 for r in other if r["id"] not in ids and _moved(r, other_start))
    settled = [r["id"] for r in absent if not _moved(r, start)]
    return [f"{source}: {row_id} {what}" for row_id in settled[pushers:]]


@dataclass
class CaseResult:
    """One cell of the matrix."""

    service: str
    kind: Kind
    code: int
    wall_s: float
    sources: dict[str, dict[str, Any]]
    problems: list[str] = field(default_factory=list)

    @property
    def cell(self) -> str:
        """`timeout 2.6s`, `error 1.2s`, `ok 1.3s` (the worst affected source), `!` on a broken case."""
        states = [self.sources.get(s, {}).get("state", "missing") for s in AFFECTED[self.service]]
        worst = next((s for s in states if s != "ok"), "ok")
        return f"{worst} {self.wall_s:.1f}s" + (" !" if self.problems else "")


def judge(service: str, kind: Kind, code: int, records: list[dict[str, Any]], stderr: str, wall: float,
          case_start: float, baseline: Baseline) -> CaseResult:
    """Check one case against the contract; the problems found are listed in the result."""
    problems: list[str] = []
    sources = {r["source"]: r for r in records if r["type"] == "source"}
    rows = rows_by_source(records)
    expected_code = 0 if kind.succeeds else 1
    if code != expected_code:
        problems.append(f"exit {code}, expected {expected_code}")
    if "Traceback" in stderr:
        problems.append("a traceback on stderr")
    if sorted(sources) != sorted(SOURCES):
        problems.append(f"source records for {sorted(sources)}")
    affected = AFFECTED[service]
    for source in SOURCES:
        record = sources.get(source)
        if record is None:
            continue
        if record["rows"] != len(rows[source]):
            problems.append(f"{source}: rows={record['rows']} but {len(rows[source])} row records")
        faulted = source in affected and not kind.succeeds
        if not faulted:
            if record["state"] != "ok" or record["error"] is not None or record["stale_s"] is not None:
                problems.append(f"{source}: {record['state']} ({record['error']}), expected ok")
            problems += unexplained_differences(source, rows[source], case_start, baseline.rows[source],
                                                baseline.started)
            continue
        if record["state"] not in ("error", "timeout"):
            problems.append(f"{source}: state {record['state']}, expected error or timeout")
        error = record["error"]
        if not isinstance(error, str) or not error.strip() or "\n" in error or len(error) > 1000:
            problems.append(f"{source}: error is not one line: {error!r}")
        if service == "logging":
            # The executions were listed: the runner rows are this refresh's, only unexplained.
            if [r["id"] for r in rows[source]] != [r["id"] for r in baseline.rows[source]]:
                problems.append(f"{source}: runner rows missing under a logging fault")
            continue
        if not isinstance(record["stale_s"], (int, float)) or record["stale_s"] < 0:
            problems.append(f"{source}: stale_s={record['stale_s']!r}, expected the age of the last good rows")
        if [_without_age(r) for r in rows[source]] != baseline.rows[source]:
            problems.append(f"{source}: the stale rows are not the last good rows")
        if any(r["extra"].get("stale_s") != record["stale_s"] for r in rows[source]):
            problems.append(f"{source}: a row from memory without its age (extra.stale_s)")
    return CaseResult(service, kind, code, wall, sources, problems)


def _without_age(row: dict[str, Any]) -> dict[str, Any]:
    """A row shown from memory as it was remembered (without the extra.stale_s it is shown with)."""
    extra = {k: v for k, v in row["extra"].items() if k != "stale_s"}
    return {**row, "extra": extra}


def run_case(service: str, kind: Kind, baseline: Baseline, work: Path,
             deadline_s: float = DEFAULT_DEADLINE_S) -> CaseResult:
    """Copy the seeded state, run `get` with the fault, judge it."""
    seed = baseline.state_dir
    if service == "logging":
        seed = seed.with_name("seed-no-runner-facts")
    state = work / f"{service}-{kind.label.replace('>', 'gt').replace('<', 'lt').replace(':', '')}"
    shutil.copytree(seed, state)
    try:
        code, records, stderr, wall, began = run_get(state, deadline_s, kind.fault(service, deadline_s),
                                                     timeout_s=deadline_s + 60)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return judge(service, kind, code, records, stderr, wall, began, baseline)


def print_matrix(results: list[CaseResult], kinds: list[Kind], services: list[str]) -> None:
    """Rows services, columns kinds, each cell the faulted source's state and the case's wall time."""
    by_cell = {(r.service, r.kind.label): r for r in results}
    head = ["service"] + [k.label for k in kinds]
    lines = [head] + [[s] + [by_cell[(s, k.label)].cell if (s, k.label) in by_cell else "-" for k in kinds]
                      for s in services]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for n, line in enumerate(lines):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(line, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE_S)
    parser.add_argument("--only", nargs="*", choices=SERVICES, default=list(SERVICES))
    parser.add_argument("--kinds", nargs="*", choices=list(KINDS_BY_LABEL), default=list(KINDS_BY_LABEL))
    options = parser.parse_args()
    kinds = [KINDS_BY_LABEL[k] for k in options.kinds]
    results: list[CaseResult] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="arrctl-faults-") as tmp:
        baseline = make_baseline(Path(tmp))
        for service in options.only:
            for kind in kinds:
                result = run_case(service, kind, baseline, Path(tmp), options.deadline)
                results.append(result)
                print(f"  {service}:{kind.label:<10} exit {result.code}  {result.wall_s:5.2f}s  "
                      f"{'OK' if not result.problems else 'BROKEN: ' + '; '.join(result.problems)}",
                      file=sys.stderr, flush=True)
    total = time.monotonic() - began
    print(f"\n## Fault matrix: `arrctl --demo get --json --deadline {options.deadline:g}` "
          f"(cell: state of the faulted source, wall time of the whole command)\n")
    print_matrix(results, kinds, options.only)
    print(f"\n{len(results)} cases, {sum(1 for r in results if not r.problems)} as expected; "
          f"whole matrix {total:.0f} s (mean case {statistics_mean([r.wall_s for r in results]):.2f} s, "
          f"max {max(r.wall_s for r in results):.2f} s)")
    broken = [r for r in results if r.problems]
    for r in broken:
        print(f"BROKEN {r.service}:{r.kind.label}: {'; '.join(r.problems)}")
    return 1 if broken else 0


def statistics_mean(values: list[float]) -> float:
    """The mean (0 for none)."""
    return sum(values) / len(values) if values else 0.0


if __name__ == "__main__":
    sys.exit(main())
