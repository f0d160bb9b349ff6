"""arrctl benchmarks: every figure in the README comes from this script (`make bench`).

Usage: python bench/run.py [--soak N] [--only NAME ...]
Prints one table per benchmark. Runs against the embedded fake cloud on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arrctl.app import demo_config  # noqa: E402
from arrctl.model import SOURCES, make_row  # noqa: E402
from arrctl.refresh import Endpoints, Refresher  # noqa: E402
from arrctl.sandbox import Sandbox  # noqa: E402
from arrctl.store import Store  # noqa: E402

# seeds/000: 18 regions at ~1 s per list call, one log read per FINISHED execution at ~4 s, W&B ~3 s
SEED_PROFILE = ["run:latency:1", "vertex:latency:1", "build:latency:1", "logging:latency:4", "wandb:latency:1.5"]


def table(title: str, rows: list[tuple[str, str]]) -> None:
    """Print a two-column table."""
    width = max(len(k) for k, _ in rows)
    print(f"\n## {title}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    sys.stdout.flush()


def refresher(sandbox: Sandbox, state: Path, deadline: float | None = None) -> Refresher:
    return Refresher(demo_config(), Store(state), Endpoints(sandbox.gcp_endpoint, sandbox.wandb_base_url),
                     grace_s=0.5, deadline_s=deadline)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.monotonic()
    value = fn()
    return time.monotonic() - start, value


def bench_critical_path() -> None:
    """Refresh wall vs the slowest single source alone, on the seeds/000 latency profile."""
    with Sandbox(faults=SEED_PROFILE) as sandbox, tempfile.TemporaryDirectory() as tmp:
        alone = {}
        for source in SOURCES:
            took, results = timed(lambda: refresher(sandbox, Path(tmp) / f"alone-{source}", 60).refresh([source]))
            alone[source] = took
            assert results[source].state == "ok", results[source].error
        logging_before = sandbox.stats()["requests"].get("logging", 0)
        wall, results = timed(lambda: refresher(sandbox, Path(tmp) / "all", 60).refresh(list(SOURCES)))
        log_calls = sandbox.stats()["requests"].get("logging", 0) - logging_before
        slowest = max(alone, key=alone.get)
        rows = [(f"{s} alone", f"{alone[s]:.2f} s") for s in SOURCES]
        rows += [
            ("all five together (refresh wall)", f"{wall:.2f} s"),
            ("slowest single chain", f"{alone[slowest]:.2f} s ({slowest})"),
            ("ratio (target <= 1.2)", f"{wall / alone[slowest]:.2f}"),
            ("log calls in that refresh", str(log_calls)),
            ("predecessor, same profile", "18 x 1 s + 5 x 4 s = 38 s for the runner alone (seeds/000: 35.6 s)"),
            ("states", " ".join(f"{s}={r.state}" for s, r in results.items())),
        ]
        table("Refresh vs slowest call chain (faults: " + " ".join(SEED_PROFILE) + ")", rows)


def bench_hung_source() -> None:
    """A source that never answers: the refresh returns at its deadline plus the grace."""
    with Sandbox(faults=["vertex:hang"]) as sandbox, tempfile.TemporaryDirectory() as tmp:
        rows = []
        for deadline in (2.0, 5.0):
            wall, results = timed(lambda: refresher(sandbox, Path(tmp) / str(deadline), deadline).refresh(list(SOURCES)))
            states = " ".join(f"{s}={r.state}" for s, r in results.items())
            rows.append((f"deadline {deadline:g} s", f"returned after {wall:.2f} s ({wall - deadline:+.2f} s vs deadline); {states}"))
        table("Hung source (vertex:hang)", rows)


def bench_log_calls() -> None:
    """Log reads per refresh and source: Cloud Logging queries (and, for builds that keep their log
    in a bucket only, Cloud Storage GETs) with newly terminal items, none in steady state."""
    rows = []
    for source, noun in (("runner", "terminal executions"), ("vertex", "failed jobs"), ("builds", "failed builds")):
        with Sandbox() as sandbox, tempfile.TemporaryDirectory() as tmp:
            r = refresher(sandbox, Path(tmp))
            counts = []
            for _ in range(3):
                before = sandbox.stats()["requests"]
                results = r.refresh([source])
                after = sandbox.stats()["requests"]
                counts.append(tuple(after.get(k, 0) - before.get(k, 0) for k in ("logging", "storage")))
            wanted = ("FAILED", "SUCCEEDED") if source == "runner" else ("FAILED", "TIMEOUT")
            terminal = sum(1 for row in results[source].rows if row["status"] in wanted)

            def said(count: tuple[int, ...]) -> str:
                return f"{count[0]}" + (f" + {count[1]} storage GET(s)" if count[1] else "")

            rows += [(f"{source}: refresh 1 (fresh memory)", f"{said(counts[0])} call(s) for {terminal} {noun} in view"),
                     (f"{source}: refresh 2, 3 (remembered)", f"{said(counts[1])}, {said(counts[2])}")]
    table("Cloud Logging calls per refresh", rows)


def bench_startup() -> None:
    """`arrctl --help` start-up time, median of 20 runs."""
    arrctl = str(Path(sys.executable).with_name("arrctl"))
    times = []
    for _ in range(20):
        took, _ = timed(lambda: subprocess.run([arrctl, "--help"], capture_output=True, check=True))
        times.append(took)
    table("Start-up", [("arrctl --help (median of 20)", f"{statistics.median(times) * 1000:.0f} ms (target <= 150 ms)"),
                       ("max", f"{max(times) * 1000:.0f} ms")])


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _children() -> int:
    me = str(os.getpid())
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                count += 1
    return count


def bench_soak(refreshes: int) -> None:
    """`watch`'s loop cost: RSS, descriptors and children flat over many refreshes; CPU per refresh."""
    from arrctl.diff import Differ
    from arrctl.watch import preload

    preload(list(SOURCES))
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as tmp:
        r = refresher(sandbox, Path(tmp))
        differ = Differ()
        samples = []
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        for n in range(1, refreshes + 1):
            results = r.refresh(list(SOURCES))
            differ.update(results, "2026-01-01T00:00:00Z")
            if n in (1, 10) or n % max(1, refreshes // 4) == 0:
                samples.append((n, _rss_kb(), _fds(), _children() - 1))  # minus the sandbox
            if n % 100 == 0:
                print(f"  ... {n}/{refreshes} refreshes, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
        wall = time.monotonic() - start
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime) / refreshes
        workers = (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime) / refreshes
        rows = [(f"after refresh {n}", f"RSS {rss / 1024:.1f} MiB, fds {fds}, worker children {kids}")
                for n, rss, fds, kids in samples]
        rows += [
            ("refresh wall (mean)", f"{wall / refreshes * 1000:.0f} ms"),
            ("supervisor CPU per refresh", f"{own * 1000:.1f} ms"),
            ("workers' CPU per refresh", f"{workers * 1000:.0f} ms (sandbox excluded)"),
            ("share of one core at a 30 s interval", f"{(own + workers) / 30 * 100:.2f} % (target <= 2 %)"),
        ]
        table(f"Soak: {refreshes} refreshes of all five sources", rows)


def bench_pure() -> None:
    """Diff + render of 10,000 rows per source, NDJSON throughput, extraction of a 10,000-line log."""
    from arrctl import render
    from arrctl.diff import Differ
    from arrctl.extract import analyze
    from arrctl.model import SourceResult

    def snapshot(status: str) -> dict[str, SourceResult]:
        return {s: SourceResult(s, rows=[make_row(s, f"{s}-{i}", status if i % 10 == 0 else "RUNNING",
                                                  region="us-central1", created="2026-11-22T05:00:00Z",
                                                  started="2026-11-22T05:00:01Z") for i in range(10_000)])
                for s in SOURCES}

    old, new = snapshot("RUNNING"), snapshot("FAILED")
    differ = Differ()
    differ.update(old, "t")
    style = render.Style(False)
    took, events = timed(lambda: differ.update(new, "t"))
    took_render, lines = timed(lambda: [render.event_line(e, time.time(), style) for e in events])
    rows_all = [row for r in new.values() for row in r.rows]
    took_json, blob = timed(lambda: b"".join(render.row_line(row) for row in rows_all))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from corpus import clear_caches, training_log
    log = training_log()

    def cold() -> object:
        clear_caches()  # (a warm cache would time dictionary lookups)
        return analyze(log)
    took_extract = min(timed(cold)[0] for _ in range(5))
    table("Pure core", [
        ("diff of 5 x 10,000 rows (5,000 changes)", f"{took * 1000:.1f} ms"),
        ("render of those 5,000 change lines", f"{took_render * 1000:.1f} ms"),
        ("diff + render per source (target <= 50 ms)", f"{(took + took_render) / 5 * 1000:.1f} ms"),
        ("NDJSON rows", f"{len(rows_all) / took_json:,.0f} rows/s (target >= 200,000), {len(blob) / 1e6:.1f} MB"),
        ("extract: 10,000-line log (target <= 50 ms)", f"{took_extract * 1000:.1f} ms"),
    ])


BENCHES = {"critical": bench_critical_path, "hung": bench_hung_source, "logcalls": bench_log_calls,
           "startup": bench_startup, "pure": bench_pure}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--soak", type=int, default=200, help="refreshes in the soak benchmark (README: 1000)")
    parser.add_argument("--only", nargs="*", choices=[*BENCHES, "soak"], help="run only these")
    args = parser.parse_args()
    chosen = args.only or [*BENCHES, "soak"]
    print(f"# arrctl benchmarks ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {sys.version.split()[0]})")
    for name in chosen:
        if name == "soak":
            bench_soak(args.soak)
        else:
            BENCHES[name]()


if __name__ == "__main__":
    main()
