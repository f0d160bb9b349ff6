"""The watch loop with scripted refreshes, a fake clock and a fake output: lines, heartbeats, cycles."""

from __future__ import annotations

import orjson

from arrctl.model import SourceResult, make_row
from arrctl.watch import watch_loop


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


class FakeReceiver:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    def wait(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))
        self.clock.t += seconds


class FakeOutput:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def bytes(self, data: bytes) -> None:
        self.lines.append(data.decode())


class FakeRefresher:
    def __init__(self, script, clock: FakeClock) -> None:
        self.script = list(script)
        self.clock = clock

    def refresh(self, sources, tick=None):
        step = self.script.pop(0)
        if isinstance(step, tuple):  # (seconds the refresh takes, results): tick as the supervisor does
            seconds, results = step
            for _ in range(int(seconds / 0.25)):
                self.clock.t += 0.25
                tick()
            return results
        self.clock.t += 1.0  # a refresh takes a second
        return step


def snapshot(*statuses):
    return {"vertex": SourceResult("vertex", rows=[make_row("vertex", f"j{i}", s, region="us-central1")
                                                   for i, s in enumerate(statuses)])}


def run(script, **kw):
    clock = FakeClock()
    out, receiver = FakeOutput(), FakeReceiver(clock)
    n = watch_loop(FakeRefresher(script, clock), ["vertex"], out, receiver, color=False, clock=clock, wall=clock,
                   do_preload=False, **kw)
    return n, out.lines, receiver.waits


def test_first_refresh_adds_then_only_changes_are_printed():
    n, lines, _ = run([snapshot("RUNNING"), snapshot("RUNNING"), snapshot("FAILED")],
                      as_json=True, interval=10, heartbeat=60, cycles=3)
    events = [orjson.loads(line) for line in lines]
    assert n == 3
    assert [(e["type"], e["id"]) for e in events] == [("added", "j0"), ("changed", "j0")]
    assert events[1]["changes"] == {"status": ["RUNNING", "FAILED"]}


def test_heartbeat_after_silence_with_cycle_sources_and_running_count():
    n, lines, waits = run([snapshot("RUNNING")] * 3, as_json=True, interval=30, heartbeat=25, cycles=3)
    events = [orjson.loads(line) for line in lines]
    beats = [e for e in events if e["type"] == "heartbeat"]
    assert [b["cycle"] for b in beats] == [1, 2]
    assert beats[0]["sources"] == {"vertex": "ok"} and beats[0]["running"] == 1
    assert waits[:2] == [25.0, 4.0]  # wake for the heartbeat (25 s after the first line), then to the next refresh


def test_text_lines_are_plain():
    _, lines, _ = run([snapshot("QUEUED")], as_json=False, interval=5, heartbeat=60, cycles=1)
    assert len(lines) == 1
    assert lines[0].endswith("  vertex    + j0  QUEUED  us-central1")  # no created time: no duration
    assert "\x1b" not in lines[0]


def test_heartbeats_keep_coming_while_a_refresh_hangs_until_its_deadline():
    # interval 1 s, heartbeat 2 s, and a refresh that takes 10 s (a source hung until its deadline)
    n, lines, _ = run([snapshot("RUNNING"), (10.0, snapshot("RUNNING"))], as_json=True, interval=1,
                      heartbeat=2, cycles=2)
    beats = [orjson.loads(line) for line in lines if orjson.loads(line)["type"] == "heartbeat"]
    assert len(beats) == 5  # one every 2 s of the 10 s refresh
    assert {b["cycle"] for b in beats} == {1}


def wandb_snapshot(active, completed):
    def rows(source, items):
        return [make_row(source, run_id, status, raw_status=status.lower(), created="2026-11-22T04:00:00Z",
                         message="CUDA out of memory" if status == "FAILED" else None)
                for run_id, status in items]
    return {"active": SourceResult("active", rows=rows("active", active)),
            "completed": SourceResult("completed", rows=rows("completed", completed))}


def jq_select_changed_status(event: dict) -> bool:
    """The README recipe `select(.type=="changed" and .changes.status)` with jq's semantics:
    a missing key is null, and only null and false are falsy (an empty list is true)."""
    changes = event.get("changes")
    status = changes.get("status") if isinstance(changes, dict) else None
    return event.get("type") == "changed" and status is not None and status is not False


README_RECIPE = 'select(.type=="changed" and .changes.status)'


def test_a_failing_wandb_run_is_one_changed_event_the_readme_recipe_shows():
    script = [wandb_snapshot([("r1", "RUNNING"), ("r2", "RUNNING")], [("r0", "SUCCEEDED")]),
              wandb_snapshot([("r2", "RUNNING")], [("r1", "FAILED"), ("r0", "SUCCEEDED")])]
    clock = FakeClock()
    out = FakeOutput()
    watch_loop(FakeRefresher(script, clock), ["active", "completed"], out, FakeReceiver(clock), as_json=True,
               color=False, clock=clock, wall=clock, do_preload=False, interval=5, heartbeat=60, cycles=2)
    events = [orjson.loads(line) for line in out.lines]
    second = events[3:]  # three rows added by the first refresh
    assert [(e["type"], e["source"], e["id"]) for e in second] == [("changed", "completed", "r1")]
    assert second[0]["changes"]["status"] == ["RUNNING", "FAILED"]
    assert second[0]["changes"]["source"] == ["active", "completed"]
    shown = [e for e in events if jq_select_changed_status(e)]
    assert [(e["id"], e["changes"]["status"]) for e in shown] == [("r1", ["RUNNING", "FAILED"])]
    import shutil
    import subprocess

    if shutil.which("jq"):  # the recipe itself, through real jq
        done = subprocess.run(["jq", "-c", README_RECIPE], input="".join(out.lines), capture_output=True,
                              text=True, timeout=10, check=True)
        assert [orjson.loads(line) for line in done.stdout.splitlines()] == shown

    clock = FakeClock()
    text = FakeOutput()
    watch_loop(FakeRefresher(script, clock), ["active", "completed"], text, FakeReceiver(clock), as_json=False,
               color=False, clock=clock, wall=clock, do_preload=False, interval=5, heartbeat=60, cycles=2)
    assert len(text.lines) == 4
    assert text.lines[3].endswith("  completed ~ r1  RUNNING → FAILED  CUDA out of memory")


def test_the_recipe_is_the_readmes():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"jq -c --unbuffered '{README_RECIPE}'" in readme


def test_a_filter_shows_the_rows_it_matches_before_or_after_a_change():
    from arrctl.filters import parse_filter

    script = [snapshot("RUNNING", "SUCCEEDED", "QUEUED"), snapshot("FAILED", "SUCCEEDED", "RUNNING"),
              snapshot("FAILED", "SUCCEEDED", "SUCCEEDED")]
    _, lines, _ = run(script, as_json=True, interval=5, heartbeat=60, cycles=3,
                      select=parse_filter(status=("running",)))
    events = [orjson.loads(line) for line in lines]
    assert [(e["type"], e["id"], e.get("changes", {}).get("status")) for e in events] == [
        ("added", "j0", None),                                  # j1 and j2 were not running
        ("changed", "j0", ["RUNNING", "FAILED"]), ("changed", "j2", ["QUEUED", "RUNNING"]),
        ("changed", "j2", ["RUNNING", "SUCCEEDED"])]


def test_the_bell_rings_once_per_refresh_that_shows_a_new_failure():
    from arrctl.filters import parse_filter

    script = [snapshot("FAILED", "RUNNING", "RUNNING"), snapshot("FAILED", "FAILED", "TIMEOUT"),
              snapshot("FAILED", "FAILED", "TIMEOUT"), snapshot("FAILED", "FAILED", "TIMEOUT", "FAILED")]
    _, lines, _ = run(script, as_json=False, interval=5, heartbeat=60, cycles=4, bell=True)
    # the first refresh's FAILED row was already failed: no bell; two failures at once: one ring
    assert [line for line in lines if "\a" in line] == ["\a", "\a"]
    assert lines.index("\a") == 5 and lines[-1] == "\a" and lines[-2].endswith("+ j3  FAILED  us-central1")
    _, quiet, _ = run(script, as_json=False, interval=5, heartbeat=60, cycles=4)
    assert "\a" not in "".join(quiet)
    _, filtered, _ = run(script[:2], as_json=False, interval=5, heartbeat=60, cycles=2, bell=True,
                         select=parse_filter(status=("timeout",)))
    assert filtered[-1] == "\a" and filtered[-2].endswith("~ j2  RUNNING → TIMEOUT  us-central1")
    _, hidden, _ = run(script[:2], as_json=False, interval=5, heartbeat=60, cycles=2, bell=True,
                       select=parse_filter(region=("europe-west4",)))
    assert hidden == []  # a failure the filter hides rings nothing
