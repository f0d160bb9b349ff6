"""The state store: memory that survives, is shared safely, and is never fatal."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from arrctl.model import make_row
from arrctl.store import FILE_NAME, Store

FACT = {"source": "runner", "id": "exec-1", "status": "FAILED", "verdict": "failed",
        "message": "Quota 'NVIDIA_L4_GPUS' exceeded", "rule": "gcp.quota", "jobs": None, "line": 12,
        "finished": "2026-11-22T05:00:00Z"}


def test_facts_and_last_good_rows_persist_across_opens(state_dir: Path):
    store = Store(state_dir, clock=lambda: 1000.0)
    rows = [make_row("vertex", "j1", "RUNNING", region="us-central1")]
    store.save_refresh([FACT], {"vertex": rows})
    store.close()
    again = Store(state_dir)
    assert again.persistent
    fact = again.facts("runner")["exec-1"]
    assert (fact["message"], fact["rule"], fact["line"], fact["first_seen"]) == (FACT["message"], "gcp.quota", 12, 1000.0)
    assert again.last_good("vertex") == (rows, 1000.0)
    assert again.last_good("builds") is None


def test_a_fact_is_never_overwritten(state_dir: Path):
    store = Store(state_dir)
    store.save_refresh([FACT], {})
    store.save_refresh([{**FACT, "message": "something else"}], {})
    assert store.facts("runner")["exec-1"]["message"] == FACT["message"]


def test_files_are_private(state_dir: Path):
    Store(state_dir).close()
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state_dir / FILE_NAME).st_mode) == 0o600


def test_damaged_file_is_set_aside_with_one_warning(state_dir: Path):
    state_dir.mkdir(parents=True)
    (state_dir / FILE_NAME).write_bytes(b"this is not sqlite" * 100)
    warnings: list[str] = []
    store = Store(state_dir, warn=warnings.append)
    assert store.persistent and len(warnings) == 1
    assert "was damaged" in warnings[0] and ".corrupt-" in warnings[0]
    aside = [p.name for p in state_dir.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].startswith(FILE_NAME + ".corrupt-")
    store.save_refresh([FACT], {})
    assert "exec-1" in store.facts("runner")


def test_a_file_of_a_newer_arrctl_is_set_aside_not_read(state_dir: Path):
    """Told apart by its type (statefile.NewerSchema), not by the words of the error."""
    import sqlite3

    state_dir.mkdir(parents=True)
    db = sqlite3.connect(state_dir / FILE_NAME)
    db.execute("PRAGMA user_version = 99")
    db.close()
    warnings: list[str] = []
    store = Store(state_dir, warn=warnings.append)
    assert store.persistent and len(warnings) == 1
    assert "was damaged (schema version 99 is newer than this arrctl" in warnings[0]
    assert [p.name for p in state_dir.iterdir() if ".corrupt-" in p.name] != []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_directory_runs_without_persistence(tmp_path: Path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    warnings: list[str] = []
    store = Store(locked / "state", warn=warnings.append)
    assert not store.persistent and "running without persistence" in warnings[0]


def test_state_path_under_a_file_runs_without_persistence(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    warnings: list[str] = []
    store = Store(blocker / "state", warn=warnings.append)
    assert not store.persistent
    assert warnings == [f"state directory {blocker / 'state'} is unusable (Not a directory); running without persistence"]
    store.save_refresh([FACT], {})  # still works, in memory
    assert "exec-1" in store.facts("runner")


def test_claim_unreported_reports_each_failure_once(state_dir: Path):
    store = Store(state_dir)
    assert not store.has_reports()
    assert store.claim_unreported([("runner", "a"), ("vertex", "b")]) == {("runner", "a"), ("vertex", "b")}
    assert store.claim_unreported([("runner", "a"), ("runner", "c")]) == {("runner", "c")}
    assert Store(state_dir).claim_unreported([("vertex", "b")]) == set()
    assert store.has_reports()


def test_each_consumer_is_told_once(state_dir: Path):
    store = Store(state_dir)
    assert store.claim_unreported([("runner", "a")], "prom:/x.prom") == {("runner", "a")}
    assert store.claim_unreported([("runner", "a")], "nagios:-") == {("runner", "a")}
    assert store.claim_unreported([("runner", "a")], "nagios:-") == set()


def test_a_failure_still_in_view_is_not_paged_again_after_the_retention(state_dir: Path):
    now = [1_000_000.0]
    store = Store(state_dir, clock=lambda: now[0])
    store.claim_unreported([("completed", "old-run")])
    for _ in range(40):  # seen by a check every day for 40 days
        now[0] += 86400
        assert store.claim_unreported([("completed", "old-run")]) == set()
        store.prune(30)


def test_prune_forgets_old_entries(state_dir: Path):
    now = [1_000_000.0]
    store = Store(state_dir, clock=lambda: now[0])
    store.save_refresh([FACT], {})
    store.claim_unreported([("runner", "exec-1")])
    now[0] += 31 * 86400
    store.save_refresh([{**FACT, "id": "exec-2"}], {})
    assert store.prune(30) == 2
    assert list(store.facts("runner")) == ["exec-2"]


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from arrctl.model import make_row
    from arrctl.store import Store
    state, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for i in range(n):
        store = Store(state)
        store.facts("runner"); store.last_good("vertex")
        store.save_refresh([{"source": "runner", "id": f"{who}-{i}", "status": "FAILED", "message": "m"}],
                           {"vertex": [make_row("vertex", f"{who}-{i}", "RUNNING")]})
        store.claim_unreported([("runner", f"{who}-{i}")])
        store.close()
    print("ok")
""")


@pytest.mark.timeout(60)
def test_four_processes_share_one_store_without_locking_errors(state_dir: Path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(state_dir), f"p{k}", "100"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]
    outputs = [p.communicate(timeout=50) for p in procs]
    for (out, err), p in zip(outputs, procs):
        assert p.returncode == 0 and out.strip() == "ok", err
        assert "locked" not in err
    facts = Store(state_dir).facts("runner")
    assert len(facts) == 400


KILLED_WRITER = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from arrctl.store import Store
    store = Store(Path(sys.argv[1]))
    i = 0
    while True:
        store.save_refresh([{"source": "runner", "id": f"e{i}", "status": "FAILED", "message": "m"}], {})
        os.write(1, f"{i}\\n".encode())
        i += 1
""")


def test_kill_9_loses_nothing_committed(state_dir: Path):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(state_dir)], stdout=subprocess.PIPE)
    committed = -1
    while committed < 200:
        committed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    facts = Store(state_dir).facts("runner")
    assert all(f"e{i}" in facts for i in range(committed + 1))


def test_damage_after_a_kill_is_not_fatal(state_dir: Path):
    store = Store(state_dir)
    store.save_refresh([FACT], {})
    store.close()
    path = state_dir / FILE_NAME
    data = bytearray(path.read_bytes())
    data[:100] = b"\0" * 100
    path.write_bytes(bytes(data))
    warnings: list[str] = []
    again = Store(state_dir, warn=warnings.append)
    assert again.persistent and len(warnings) == 1
    assert isinstance(again.facts("runner"), dict)


def test_unreported_reads_without_claiming(state_dir: Path):
    store = Store(state_dir)
    assert store.unreported([("runner", "a")], "nagios:-") == {("runner", "a")}
    assert store.unreported([("runner", "a")], "nagios:-") == {("runner", "a")}  # nothing claimed yet
    store.claim_unreported([("runner", "a")], "nagios:-")
    assert store.unreported([("runner", "a")], "nagios:-") == set()


def test_schema_v1_reports_carry_over_to_the_plain_check(state_dir: Path):
    state_dir.mkdir(parents=True)
    old = sqlite3.connect(state_dir / FILE_NAME)
    old.executescript("""
        CREATE TABLE reported (source TEXT NOT NULL, id TEXT NOT NULL, reported_at REAL NOT NULL,
                               PRIMARY KEY (source, id));
        INSERT INTO reported VALUES ('runner', 'exec-1', 5.0);
        PRAGMA user_version = 1;
    """)
    old.close()
    store = Store(state_dir)
    assert store.unreported([("runner", "exec-1"), ("runner", "exec-2")], "check") == {("runner", "exec-2")}


def test_memory_of_another_scope_is_never_read(state_dir: Path):
    sandbox = Store(state_dir, scope="sandbox")
    sandbox.save_refresh([FACT], {"runner": [make_row("runner", "exec-1", "FAILED", region="us-central1")]})
    assert sandbox.claim_unreported([("runner", "exec-1")]) == {("runner", "exec-1")}
    sandbox.close()
    real = Store(state_dir, scope="real")
    assert real.last_good("runner") is None and real.facts("runner") == {}
    assert real.unreported([("runner", "exec-1")]) == {("runner", "exec-1")}
    assert Store(state_dir, scope="sandbox").last_good("runner") is not None  # each keeps its own


def test_rows_saved_by_an_older_version_load_with_every_row_key(state_dir: Path):
    from arrctl.model import ROW_KEYS

    store = Store(state_dir, clock=lambda: 5.0)
    old = {k: v for k, v in make_row("vertex", "j1", "FAILED", message="m").items() if k not in ("category", "links")}
    store.db.execute("INSERT INTO last_good (scope, source, saved_at, rows) VALUES ('', 'vertex', 5.0, ?)",
                     (orjson.dumps([old]),))
    rows, saved_at = store.last_good("vertex")
    assert list(rows[0]) == list(ROW_KEYS) and saved_at == 5.0
    assert (rows[0]["category"], rows[0]["links"], rows[0]["message"]) == (None, {}, "m")


def test_schema_v2_keeps_its_reports_and_drops_rows_of_unknown_origin(state_dir: Path):
    state_dir.mkdir(parents=True)
    old = sqlite3.connect(state_dir / FILE_NAME)
    old.executescript("""
        CREATE TABLE terminal (source TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL, verdict TEXT,
            message TEXT, rule TEXT, jobs INTEGER, line INTEGER, first_seen REAL NOT NULL, finished TEXT,
            PRIMARY KEY (source, id));
        CREATE TABLE last_good (source TEXT PRIMARY KEY, saved_at REAL NOT NULL, rows BLOB NOT NULL);
        CREATE TABLE reported (consumer TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL,
            first_reported REAL NOT NULL, last_seen REAL NOT NULL, PRIMARY KEY (consumer, source, id));
        INSERT INTO terminal VALUES ('runner', 'exec-1', 'FAILED', 'failed', 'm', NULL, NULL, NULL, 5.0, NULL);
        INSERT INTO last_good VALUES ('runner', 5.0, '[{"id": "exec-1", "status": "FAILED"}]');
        INSERT INTO reported VALUES ('check', 'runner', 'exec-1', 5.0, 5.0);
        PRAGMA user_version = 2;
    """)
    old.close()
    store = Store(state_dir, scope="any")
    assert store.last_good("runner") is None and store.facts("runner") == {}
    # an upgrade pages nothing twice: the old reports count for every scope
    assert store.claim_unreported([("runner", "exec-1"), ("runner", "exec-2")]) == {("runner", "exec-2")}


def test_a_claim_pages_once_and_a_released_claim_pages_again(state_dir: Path):
    store = Store(state_dir)
    first = store.claim({("runner", "a"): None})
    assert first.new == {("runner", "a")} and store.claim({("runner", "a"): None}).new == set()
    store.release(first)
    assert store.claim({("runner", "a"): None}).new == {("runner", "a")}


def test_first_check_records_old_failures_as_seen_per_source(state_dir: Path):
    now = 100_000.0
    store = Store(state_dir, clock=lambda: now)
    failures = {("runner", "old"): now - 7200, ("runner", "recent"): now - 60, ("runner", "no-end"): None,
                ("completed", "old-run"): now - 7200}
    # completed did not answer in full: its baseline is not taken, its old failure is still not paged
    first = store.claim(failures, first_window_s=3600, complete=["runner"])
    assert first.new == {("runner", "recent"), ("runner", "no-end")}
    assert first.baseline == {("runner", "old"), ("completed", "old-run")} and first.marked == ["runner"]
    later = store.claim({("runner", "older"): now - 86400, ("completed", "older-run"): now - 86400},
                        first_window_s=3600, complete=["runner", "completed"])
    # runner's baseline was taken: what ended long before it and comes into view only now is old news
    assert later.new == set() and later.late == {("runner", "older")}
    assert later.baseline == {("completed", "older-run")}
    assert store.claim({("completed", "x"): now - 60}, first_window_s=3600).new == {("completed", "x")}


def test_a_failure_in_view_late_pages_unless_it_ended_before_the_first_checks_window(state_dir: Path):
    clock = [100_000.0]
    store = Store(state_dir, clock=lambda: clock[0])
    assert store.claim({}, first_window_s=3600, complete=["completed"]).marked == ["completed"]
    clock[0] += 86400  # a day of checks later, `completed_limit` is raised: older runs come into view
    taken = store.claim({("completed", "before-window"): 100_000.0 - 7200,
                         ("completed", "in-window"): 100_000.0 - 1800,
                         ("completed", "after-first"): 100_000.0 + 600}, first_window_s=3600, complete=["completed"])
    assert taken.late == {("completed", "before-window")} and taken.baseline == set()
    assert taken.new == {("completed", "in-window"), ("completed", "after-first")}
    assert store.claim({("completed", "before-window"): 0.0}, first_window_s=3600).new == set()  # told once


def test_a_released_first_check_is_a_first_check_again(state_dir: Path):
    store = Store(state_dir, clock=lambda: 100_000.0)
    claim = store.claim({("vertex", "j"): 0.0}, first_window_s=3600, complete=["vertex"])
    assert claim.baseline == {("vertex", "j")}
    store.release(claim)
    again = store.claim({("vertex", "j"): 0.0, ("vertex", "k"): 0.0}, first_window_s=3600, complete=["vertex"])
    assert again.baseline == {("vertex", "j"), ("vertex", "k")} and again.new == set()


def test_a_file_where_the_state_directory_should_be_is_not_a_directory(tmp_path: Path):
    (tmp_path / "demo").write_text("x")  # e.g. `demo` inside the state directory
    warnings: list[str] = []
    store = Store(tmp_path / "demo", warn=warnings.append)
    assert not store.persistent
    assert warnings == [f"state directory {tmp_path / 'demo'} is unusable (Not a directory); running without persistence"]


def test_facts_of_schema_3_are_kept_and_gain_a_category(state_dir: Path):
    import sqlite3

    state_dir.mkdir(parents=True, exist_ok=True)
    old = sqlite3.connect(state_dir / "state.sqlite3")
    old.executescript("""
        CREATE TABLE terminal (scope TEXT NOT NULL, source TEXT NOT NULL, id TEXT NOT NULL, status TEXT NOT NULL,
            verdict TEXT, message TEXT, rule TEXT, jobs INTEGER, line INTEGER, first_seen REAL NOT NULL,
            finished TEXT, PRIMARY KEY (scope, source, id));
        INSERT INTO terminal VALUES ('s', 'runner', 'exec-1', 'FAILED', 'failed', 'm', 'r', NULL, 3, 5.0, NULL);
        PRAGMA user_version = 3;
    """)
    old.close()
    store = Store(state_dir, scope="s")
    assert store.facts("runner")["exec-1"]["message"] == "m" and store.facts("runner")["exec-1"]["category"] is None
    store.save_refresh([{"source": "completed", "id": "run-1", "status": "FAILED", "verdict": "failed",
                         "message": "socketStartConnect: Connect to 10.0.0.2<4187> failed", "category": "distributed"}],
                       {})
    assert Store(state_dir, scope="s").facts("completed")["run-1"]["category"] == "distributed"
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == 4


def test_a_failure_whose_end_is_only_its_creation_is_never_late(state_dir: Path):
    clock = [100_000.0]
    store = Store(state_dir, clock=lambda: clock[0])
    store.claim({}, first_window_s=3600, complete=["completed"])
    clock[0] += 86400  # created 2 h before the first check, crashed a day after it: no end known
    taken = store.claim({("completed", "long-run"): 100_000.0 - 7200}, first_window_s=3600,
                        unfinished=[("completed", "long-run")])
    assert taken.new == {("completed", "long-run")} and taken.late == set()
