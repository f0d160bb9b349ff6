"""Chaos: kill -9 of the supervisor at random moments, and 4 arrctl processes on one state directory.

Usage: python bench/chaos.py [--kills N] [--shared N] [--seed S]
Part 1 runs N refreshes (`arrctl --demo get --json`), each killed with SIGKILL at a random moment
of its life (some finish first), and checks after every kill: no process of it is left (its
descendants, and anything naming its state directory or its pid as parent), the state store
opens without being set aside, and every terminal fact committed before the kill is still there.
Part 2 runs `watch` beside loops of `check`, `get --json` and `check --format json` on one state
directory for about N refreshes and checks: no "database is locked", no traceback, no fact lost,
every check's exit status the one its first line names. tests/test_chaos.py uses the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARRCTL = Path(sys.executable).with_name("arrctl")
ORPHAN_GRACE_S = 2.0
CHECK_CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
SCRUBBED = ("ARRCTL_CONFIG", "ARRCTL_STATE_DIR", "ARRCTL_GCP_ENDPOINT", "WANDB_BASE_URL",
            "ARRCTL_SANDBOX_FAULTS", "ARRCTL_SANDBOX_SCENARIO", "GOOGLE_CLOUD_PROJECT",
            "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "NO_COLOR")


def clean_env() -> dict[str, str]:
    """os.environ without anything that would point arrctl elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.setdefault("ARRCTL_KILL_GRACE", "0.1")
    return env


# -- /proc -------------------------------------------------------------------------------------

def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    found = _stat(pid)
    return found is not None and found[0] != "Z"


def processes() -> dict[int, int]:
    """Every live process: pid -> parent pid."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None and found[0] != "Z":
                out[int(entry.name)] = found[1]
    return out


def descendants(pid: int) -> set[int]:
    """Live descendants of a process (children, their children, ...)."""
    parents = processes()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cmdline(pid: int) -> str:
    """A process's command line, spaces between arguments ('' when gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def leftovers(killed: int, tree: set[int], state_dir: Path) -> list[str]:
    """Live processes that belong to a killed arrctl: its former descendants, or naming it or its state dir."""
    me = os.getpid()
    out = []
    for pid in processes():
        if pid == me:
            continue
        line = cmdline(pid)
        if pid in tree or f"{state_dir} " in line + " " or f"--parent-pid {killed} " in line + " ":
            out.append(f"{pid}: {line[:120]}")
    return out


# -- the store -----------------------------------------------------------------------------------

def committed_facts(state_dir: Path) -> set[tuple[str, str]]:
    """(source, id) of every terminal fact committed in a state directory's demo store."""
    path = state_dir / "demo" / "state.sqlite3"
    if not path.exists():
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=15)
    try:
        return set(db.execute("SELECT source, id FROM terminal").fetchall())
    except sqlite3.OperationalError as exc:  # the first refresh has not created the table yet
        if "no such table" in str(exc):
            return set()
        raise
    finally:
        db.close()


def store_opens(state_dir: Path) -> list[str]:
    """Problems opening the store the way arrctl does (none when it is persistent and not set aside)."""
    from arrctl.store import Store

    warnings: list[str] = []
    store = Store(state_dir / "demo", warn=warnings.append)
    try:
        problems = [f"store warning: {w}" for w in warnings]
        if not store.persistent:
            problems.append("the store is not persistent")
        store.facts("runner")
    finally:
        store.close()
    problems += [f"set aside: {p.name}" for p in (state_dir / "demo").glob("*.corrupt-*")]
    return problems


# -- part 1: kill -9 at random moments -------------------------------------------------------------

@dataclass
class KillReport:
    """Results of part 1."""

    refreshes: int = 0
    killed: int = 0  # killed while still running (the others had finished already)
    with_children: int = 0  # killed while workers or the sandbox were alive
    max_cleanup_s: float = 0.0  # longest time until the last process of a killed one was gone
    facts_checked: int = 0
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0


def kill_loop(root: Path, refreshes: int, rng: random.Random, rotate_every: int = 8,
              window_s: float = 1.8, moments: list[float] | None = None) -> KillReport:
    """`refreshes` gets, each SIGKILLed at a random moment in its first `window_s` seconds.

    `moments` (seconds after the start, one per refresh) replaces the random ones.
    """
    report = KillReport()
    began = time.monotonic()
    state_dir = root / "kill-0"
    for n in range(refreshes):
        if n and n % rotate_every == 0:  # a fresh store now and then: kills during its first commits
            state_dir = root / f"kill-{n}"
        proc = subprocess.Popen(
            [str(ARRCTL), "--state-dir", str(state_dir), "--demo", "get", "--json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
        at = time.monotonic() + (moments[n] if moments is not None else rng.uniform(0.0, window_s))
        while time.monotonic() < at and proc.poll() is None:
            time.sleep(0.01)
        tree = descendants(proc.pid)
        before = committed_facts(state_dir)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            report.killed += 1
            report.with_children += bool(tree)
        killed_at = time.monotonic()
        _, stderr = proc.communicate(timeout=10)
        report.refreshes += 1
        label = f"refresh {n} (pid {proc.pid})"
        if proc.returncode not in (-signal.SIGKILL, 0, 1):
            report.problems.append(f"{label}: exit {proc.returncode}: {stderr.decode(errors='replace')[-300:]}")
        if b"Traceback" in stderr:
            report.problems.append(f"{label}: traceback: {stderr.decode(errors='replace')[-300:]}")
        left = leftovers(proc.pid, tree, state_dir)
        while left and time.monotonic() - killed_at < ORPHAN_GRACE_S:
            time.sleep(0.02)
            left = leftovers(proc.pid, tree, state_dir)
        report.max_cleanup_s = max(report.max_cleanup_s, time.monotonic() - killed_at)
        if left:
            report.problems.append(f"{label}: orphans after {ORPHAN_GRACE_S:g} s: {left}")
            for line in left:  # do not let them pile up over the run
                try:
                    os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        report.problems += [f"{label}: {p}" for p in store_opens(state_dir)]
        after = committed_facts(state_dir)
        lost = before - after
        report.facts_checked += len(before)
        if lost:
            report.problems.append(f"{label}: lost facts {sorted(lost)[:5]}")
    report.wall_s = time.monotonic() - began
    return report


# -- part 2: four processes, one state directory -----------------------------------------------------

@dataclass
class SharedReport:
    """Results of part 2."""

    refreshes: int = 0
    by_command: dict[str, int] = field(default_factory=dict)
    check_states: dict[str, int] = field(default_factory=dict)
    facts: int = 0
    problems: list[str] = field(default_factory=list)
    wall_s: float = 0.0


LOOPS: dict[str, list[str]] = {
    "check": ["check"],
    "get": ["get", "--json"],
    "check-json": ["check", "--format", "json"],
}


def _judge(name: str, code: int, stdout: bytes, stderr: bytes, report: SharedReport, lock: threading.Lock) -> None:
    """Check one finished command of part 2; record what is wrong."""
    text_err = stderr.decode(errors="replace")
    problems = []
    if "database is locked" in text_err:
        problems.append(f"{name}: 'locked' on stderr: {text_err[-300:]}")
    if "Traceback" in text_err:
        problems.append(f"{name}: traceback: {text_err[-300:]}")
    state = None
    if name == "check":
        first = stdout.decode(errors="replace").split("\n", 1)[0]
        words = first.split()
        state = words[1] if len(words) > 2 and words[0] == "ARRCTL" and words[2] == "-" else None
        if state not in CHECK_CODES or CHECK_CODES[state] != code:
            problems.append(f"check: exit {code} but first line {first[:120]!r}")
    elif name == "check-json":
        try:
            doc = json.loads(stdout)
            state = doc["state"]
            if CHECK_CODES.get(state) != code or doc["code"] != code:
                problems.append(f"check --format json: exit {code} but state {state} code {doc['code']}")
        except (ValueError, KeyError) as exc:
            problems.append(f"check --format json: not a check object ({exc}): {stdout[:120]!r}")
    elif code not in (0, 1):
        problems.append(f"{name}: exit {code}: {text_err[-300:]}")
    else:
        for line in stdout.splitlines():
            try:
                json.loads(line)
            except ValueError:
                problems.append(f"{name}: a line that is not JSON: {line[:120]!r}")
                break
    with lock:
        report.refreshes += 1
        report.by_command[name] = report.by_command.get(name, 0) + 1
        if state is not None:
            report.check_states[state] = report.check_states.get(state, 0) + 1
        report.problems += problems


def shared_run(root: Path, watch_cycles: int, max_s: float = 600.0) -> SharedReport:
    """`watch --cycles N` beside three loops (check, get, check --format json) on one state directory."""
    report = SharedReport()
    lock = threading.Lock()
    state_dir = root / "shared"
    snapshots: list[set[tuple[str, str]]] = []
    began = time.monotonic()
    watch = subprocess.Popen(
        [str(ARRCTL), "--state-dir", str(state_dir), "--demo", "watch", "--json", "--interval", "0.2",
         "--cycles", str(watch_cycles)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    stop = threading.Event()

    def loop(name: str) -> None:
        while not stop.is_set():
            done = subprocess.run([str(ARRCTL), "--state-dir", str(state_dir), "--demo", *LOOPS[name]],
                                  capture_output=True, env=clean_env(), timeout=120, check=False)
            _judge(name, done.returncode, done.stdout, done.stderr, report, lock)
            facts = committed_facts(state_dir)
            with lock:
                snapshots.append(facts)

    threads = [threading.Thread(target=loop, args=(name,), daemon=True) for name in LOOPS]
    for thread in threads:
        thread.start()
    try:
        out, err = watch.communicate(timeout=max_s)
    except subprocess.TimeoutExpired:
        watch.kill()
        out, err = watch.communicate()
        report.problems.append(f"watch did not finish {watch_cycles} cycles within {max_s:g} s")
    stop.set()
    for thread in threads:
        thread.join(timeout=150)
    with lock:
        report.refreshes += watch_cycles
        report.by_command["watch"] = watch_cycles
    if watch.returncode != 0:
        report.problems.append(f"watch: exit {watch.returncode}: {err.decode(errors='replace')[-300:]}")
    for problem in _watch_problems(out, err):
        report.problems.append(problem)
    final = committed_facts(state_dir)
    report.facts = len(final)
    for n, snapshot in enumerate(snapshots):
        lost = snapshot - final
        if lost:
            report.problems.append(f"snapshot {n}: facts lost by the end: {sorted(lost)[:5]}")
    report.problems += store_opens(state_dir)
    report.wall_s = time.monotonic() - began
    return report


def _watch_problems(out: bytes, err: bytes) -> list[str]:
    """What is wrong with a watch's output: locked database, traceback, a line that is not JSON."""
    text_err = err.decode(errors="replace")
    problems = []
    if "database is locked" in text_err:
        problems.append(f"watch: 'locked' on stderr: {text_err[-300:]}")
    if "Traceback" in text_err:
        problems.append(f"watch: traceback: {text_err[-300:]}")
    for line in out.splitlines():
        try:
            json.loads(line)
        except ValueError:
            problems.append(f"watch: a line that is not JSON: {line[:120]!r}")
            break
    if not out.strip():
        problems.append("watch printed nothing")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="refreshes killed at random moments (part 1)")
    parser.add_argument("--shared", type=int, default=100, help="about this many refreshes in part 2")
    parser.add_argument("--seed", type=int, default=None)
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    sys.path.insert(0, str(ROOT))
    failed = False
    with tempfile.TemporaryDirectory(prefix="arrctl-chaos-") as tmp:
        if options.kills:
            kills = kill_loop(Path(tmp), options.kills, rng)
            print(f"\n## Chaos 1: kill -9 of the supervisor at random moments (seed {seed})\n")
            print("| refreshes | killed mid-run | with workers/sandbox alive | orphans | store damaged "
                  "| facts checked | facts lost | slowest clean-up | wall |")
            print("|---|---|---|---|---|---|---|---|---|")
            orphans = sum("orphans" in p for p in kills.problems)
            damaged = sum(("store" in p or "set aside" in p) for p in kills.problems)
            lost = sum("lost facts" in p for p in kills.problems)
            print(f"| {kills.refreshes} | {kills.killed} | {kills.with_children} | {orphans} | {damaged} | "
                  f"{kills.facts_checked} | {lost} | {kills.max_cleanup_s:.2f} s | {kills.wall_s:.0f} s |")
            for problem in kills.problems:
                print(f"PROBLEM {problem}")
            failed |= bool(kills.problems)
        if options.shared:
            # watch refreshes about as often as the three loops together (it preloads; they start up)
            shared = shared_run(Path(tmp), max(2, round(options.shared * 0.75)))
            print("\n## Chaos 2: watch + 3 loops (check, get --json, check --format json) on one state directory\n")
            print("| refreshes | per command | check states | 'database is locked' | facts at the end "
                  "| problems | wall |")
            print("|---|---|---|---|---|---|---|")
            locked = sum("locked" in p for p in shared.problems)
            per = ", ".join(f"{k} {v}" for k, v in sorted(shared.by_command.items()))
            states = ", ".join(f"{k} {v}" for k, v in sorted(shared.check_states.items()))
            print(f"| {shared.refreshes} | {per} | {states} | {locked} | {shared.facts} | "
                  f"{len(shared.problems)} | {shared.wall_s:.0f} s |")
            for problem in shared.problems:
                print(f"PROBLEM {problem}")
            failed |= bool(shared.problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
