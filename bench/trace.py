"""`arrctl --demo trace <W&B run>` against `arrctl --demo get` of the same sources (issue 17: <= 1.5x).

Usage: python bench/trace.py [--repeat N] [--profile latency]
Each command runs as a user runs it (a fresh process, the embedded fake cloud started and stopped,
one state directory shared, so both read with memory as a second run would). The median wall time
of N runs of each is printed, with the ratio; `--profile latency` adds the per-call latency of
seeds/000 (1 s per Google call, 1.5 s per W&B call), where the number of rounds of look-ups shows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARRCTL = Path(sys.executable).with_name("arrctl")
RUN = "p2t6v9jx"  # the demo's launch: queue item -> vertex-ai-launcher-q7m2x -> 1428571428571428013 -> p2t6v9jx
SAME_SOURCES = ("runner", "vertex", "active", "completed")  # what trace asks (W&B: one run query)
PROFILES = {"none": "", "latency": "run:latency:1,vertex:latency:1,logging:latency:1,wandb:latency:1.5"}
SCRUBBED = ("ARRCTL_CONFIG", "ARRCTL_STATE_DIR", "ARRCTL_GCP_ENDPOINT", "WANDB_BASE_URL", "ARRCTL_SANDBOX_FAULTS",
            "ARRCTL_SANDBOX_SCENARIO", "GOOGLE_CLOUD_PROJECT", "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT")


def timed(state: Path, faults: str, *args: str) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    if faults:
        env["ARRCTL_SANDBOX_FAULTS"] = faults
    began = time.monotonic()
    done = subprocess.run([str(ARRCTL), "--demo", "--state-dir", str(state), *args], env=env,
                          capture_output=True, timeout=300)
    return time.monotonic() - began, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="one profile (default: both)")
    options = parser.parse_args()
    worst = 0.0
    for profile in [options.profile] if options.profile else ["none", "latency"]:
        faults = PROFILES[profile]
        with tempfile.TemporaryDirectory(prefix="arrctl-bench-trace-") as tmp:
            state = Path(tmp)
            timed(state, faults, "get", *SAME_SOURCES)  # memory as a user's second command has it
            gets, traces, codes = [], [], set()
            for _ in range(options.repeat):  # interleaved: a busy moment hits both alike
                took, code = timed(state, faults, "get", *SAME_SOURCES)
                gets.append(took)
                codes.add(("get", code))
                took, code = timed(state, faults, "trace", RUN)
                traces.append(took)
                codes.add(("trace", code))
        get_s, trace_s = statistics.median(gets), statistics.median(traces)
        ratio = trace_s / get_s
        worst = max(worst, ratio)
        print(f"## trace vs get of the same sources (profile {profile}: {faults or 'no faults'})")
        rows = [(f"arrctl --demo get {' '.join(SAME_SOURCES)}", f"{get_s:6.2f} s (median of {options.repeat})"),
                (f"arrctl --demo trace {RUN}", f"{trace_s:6.2f} s (median of {options.repeat})"),
                ("ratio (target <= 1.5)", f"{ratio:6.2f}"), ("exit codes", str(sorted(codes)))]
        for label, value in rows:
            print(f"  {label:50s} {value}")
        print()
    return 0 if worst <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
