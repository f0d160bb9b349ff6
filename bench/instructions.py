"""The instructions one analysis of bench/corpus.py's 10,000-line logs takes (valgrind).

    python bench/instructions.py

Wall time on a shared 2-core machine moves by a third from one run to the next; the count of
instructions the CPU executes does not. It is read with callgrind (valgrind must be installed):
the program is run analysing the log once and three times, and half the difference is one
analysis, the start-up and the corpus's reading taken out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_RUN = """
import json, sys
sys.path.insert(0, {root!r})
from arrctl.extract import analyze, clear_caches
lines = json.load(open({log!r}))
for _ in range(int(sys.argv[1])):
    clear_caches()
    analyze(lines)
"""


def _collected(script: Path, times: int) -> int:
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           str(script), str(times)], capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if not found:
        raise SystemExit("bench/instructions.py: callgrind printed no count")
    return int(found.group(1))


def main() -> int:
    if shutil.which("valgrind") is None:
        print("bench/instructions.py: valgrind is not installed (apt install valgrind)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "bench"))
    from corpus import noise_log, training_log  # noqa: E402
    for name, build in (("10,000-line training log", training_log), ("10,000 lines of the non-failure logs", noise_log)):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "log.json"
            log.write_text(json.dumps(build()))
            script = Path(tmp) / "run.py"
            script.write_text(_RUN.format(root=str(ROOT), log=str(log)))
            print(f"reading the {name} under callgrind, once and three times ...", file=sys.stderr)
            once, thrice = _collected(script, 1), _collected(script, 3)
        print(f"{name}: {(thrice - once) / 2 / 1e6:.1f} M instructions per analysis")
    return 0


if __name__ == "__main__":
    sys.exit(main())
