"""Score the extractor on the corpus of real logs (fixtures/real): recall, false alarms, speed.

    python bench/corpus.py            # every family, the tuning split and the held-out third
    python bench/corpus.py -v         # and each case that is missed or misnamed

A case is named when the verdict is `failed`, the message holds the case's key phrase (case
insensitive) and the category is the labelled one; a false alarm is a `failed` verdict on a
case that did not fail. The held-out third is chosen by a hash of the case's path, so it never
changes as cases are added: tune on the rest, report the third separately.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from arrctl.extract import analyze, clear_caches  # noqa: E402
from arrctl.extract.ingest import lines_of_input  # noqa: E402

CORPUS = ROOT / "fixtures" / "real"


def cases() -> list[tuple[str, dict, list[str]]]:
    """(family/slug, labels, lines) of every case, sorted."""
    found = []
    for meta_path in sorted(CORPUS.glob("*/*.json")):
        log_path = meta_path.with_suffix(".log")
        if not log_path.exists():
            continue
        name = f"{meta_path.parent.name}/{meta_path.stem}"
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        found.append((name, meta, lines_of_input(log_path.read_text(encoding="utf-8"))))
    return found


def held_out(name: str) -> bool:
    """Whether a case is in the third kept aside while tuning."""
    return int(hashlib.sha1(name.encode()).hexdigest(), 16) % 3 == 0


def judge(meta: dict, result: dict) -> str:
    """named | misnamed | wrong_category | missed | ok | false_alarm."""
    if not meta["failed"]:
        return "false_alarm" if result["verdict"] == "failed" else "ok"
    if result["verdict"] != "failed":
        return "missed"
    if meta["key"].lower() not in (result["message"] or "").lower():
        return "misnamed"
    if result["category"] != meta["category"]:
        return "wrong_category"
    return "named"


def training_log() -> list[str]:
    """A 10,000-line training log as one is printed, fixed (it does not change with the corpus):
    step lines, each one distinct, a progress bar's line every 10 steps, a logging warning every
    50, one traceback at the end."""
    lines = []
    for n in range(9_997):
        loss, norm = (n * 7919) % 10_000, (n * 104_729) % 1_000
        if n % 50 == 0:
            lines.append(f"2026-12-07 10:{n // 600 % 60:02d}:{n // 10 % 60:02d},{n % 1000:03d} WARNING  "
                         f"[train.py:88] grad norm {norm / 100:.3f} exceeds clip 1.0")
        elif n % 10 == 0:
            done = n % 1000
            bar = "█" * (done // 100) + " " * (10 - done // 100)
            lines.append(f"Epoch {n // 1000}:  {done // 10}%|{bar}| {done}/1000 [00:{n % 60:02d}<01:00, "
                         f"16.2it/s, loss=0.{loss:04d}, v_num=3]")
        else:
            lines.append(f"step {n}/20000 loss=0.{loss:04d} lr=3.0e-04 grad_norm=0.{norm:03d} "
                         f"tokens/s={9000 + n % 3000}")
    return lines + ["Traceback (most recent call last):", '  File "/app/train.py", line 1, in f', "ValueError: the end"]


def noise_log() -> list[str]:
    """10,000 lines of the corpus's non-failure logs end to end (their alarming lines one after
    another, far denser in them than any real log; it grows with the corpus), step lines between."""
    quiet = [line for _, meta, lines in cases() if not meta["failed"] for line in lines]
    steps = [f"step {n}/20000 loss=0.{n % 1000:03d} lr=3.0e-04 errors_total=0" for n in range(100)]
    block = steps * 4 + quiet
    return (block * (10_000 // len(block) + 1))[:9_997] + [
        "Traceback (most recent call last):", '  File "/app/train.py", line 1, in f', "ValueError: the end"]


def speed() -> str:
    """The time of 10,000-line logs (an ordinary training log, the non-failure logs' noise, the
    failure logs' lines) and of 100 KB lines, with the line caches cleared before each run."""
    pool = [line for _, _, lines in cases() for line in lines]
    dense = (pool * (10_000 // max(len(pool), 1) + 1))[:10_000]
    huge = ["x" * 100_000, "wandb: ERROR " + "e" * 100_000, "ERROR: " + "a.b " * 25_000]
    times = {}
    for name, lines in (("10,000-line training log", training_log()),
                        ("10,000 lines of the non-failure logs", noise_log()),
                        ("10,000 lines all from failure logs", dense), ("three 100 KB lines", huge)):
        best = float("inf")
        for _ in range(5):
            clear_caches()  # every run starts cold
            started = time.perf_counter()
            analyze(lines)
            best = min(best, time.perf_counter() - started)
        times[name] = best
    return "speed (best of 5): " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in times.items())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--split", choices=("all", "tune", "holdout"), default="all")
    args = parser.parse_args()
    table: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    misses = []
    started = time.perf_counter()
    for name, meta, lines in cases():
        split = "holdout" if held_out(name) else "tune"
        if args.split != "all" and split != args.split:
            continue
        result = analyze(lines).to_dict()
        verdict = judge(meta, result)
        for key in ((name.split("/")[0], split), ("ALL", split), ("ALL", "all")):
            table[key][verdict] += 1
        if verdict not in ("named", "ok"):
            misses.append((name, split, verdict, meta, result))
    took = time.perf_counter() - started
    print(f"{'family':<14}{'split':<9}{'named':>7}{'fails':>7}{'recall':>8}{'cat':>6}"
          f"{'falarm':>8}{'clean':>7}")
    for (family, split), counts in sorted(table.items()):
        failures = sum(counts[k] for k in ("named", "misnamed", "wrong_category", "missed"))
        named_key = counts["named"] + counts["wrong_category"]
        clean = counts["ok"] + counts["false_alarm"]
        recall = f"{100 * named_key / failures:.0f}%" if failures else "-"
        cat = f"{100 * counts['named'] / named_key:.0f}%" if named_key else "-"
        print(f"{family:<14}{split:<9}{named_key:>7}{failures:>7}{recall:>8}{cat:>6}"
              f"{counts['false_alarm']:>8}{clean:>7}")
    print(f"\n{sum(1 for _ in cases())} cases analysed in {took * 1000:.0f} ms")
    print(speed())
    if args.verbose:
        for name, split, verdict, meta, result in misses:
            print(f"\n[{verdict}] {name} ({split})  want {meta['category']}: {meta['key']!r}")
            print(f"   got {result['verdict']} {result['category']} {result['rule']}: "
                  f"{result['message']!r}")
            if meta.get("line"):
                print(f"   line: {meta['line'][:200]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
