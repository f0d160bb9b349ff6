"""Pure rendering with exact expected output (fixed clock and time zone, no colour)."""

from __future__ import annotations

import datetime as dt

import orjson

from arrctl import render
from arrctl.model import SourceResult, make_row

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 22, 6, 0, 0, tzinfo=UTC).timestamp()
PLAIN = render.Style(False)


def test_human_duration():
    assert [render.human_duration(s) for s in (None, 0, 59.9, 60, 725, 3600, 3900, 86400 * 2 + 3600 * 4)] == \
        ["-", "0s", "59s", "1m", "12m", "1h00m", "1h05m", "2d04h"]


def running_row():
    return make_row("runner", "vertex-ai-launcher-abc12", "RUNNING", raw_status="RUNNING", region="us-central1",
                    created="2026-11-22T05:47:00Z", started="2026-11-22T05:48:00Z")


def failed_row():
    return make_row("runner", "vertex-ai-launcher-zz9", "FAILED", raw_status="CONDITION_FAILED", region="europe-west2",
                    created="2026-11-22T04:00:00Z", started="2026-11-22T04:00:30Z", finished="2026-11-22T04:02:00Z",
                    duration_s=90.0, message="Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 0.0 in region us-west2.")


def test_added_running_line_shows_duration():
    event = {"type": "added", "ts": "2026-11-22T06:00:00.000Z", "source": "runner", "id": "x", "row": running_row()}
    assert render.event_line(event, NOW, PLAIN, UTC) == \
        "06:00:00  runner    + vertex-ai-launcher-abc12  RUNNING  running 12m, us-central1"


def test_status_change_line_carries_the_root_error():
    event = {"type": "changed", "ts": "2026-11-22T06:00:00.000Z", "source": "runner", "id": "x", "row": failed_row(),
             "changes": {"status": ["RUNNING", "FAILED"]}}
    assert render.event_line(event, NOW, PLAIN, UTC) == (
        "06:00:00  runner    ~ vertex-ai-launcher-zz9  RUNNING → FAILED  europe-west2  "
        "Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 0.0 in region us-west2.")


def test_removed_and_source_and_heartbeat_lines():
    gone = {"type": "removed", "ts": "2026-11-22T06:00:00.000Z", "source": "vertex", "id": "x",
            "row": make_row("vertex", "123", "SUCCEEDED", name="train")}
    assert render.event_line(gone, NOW, PLAIN, UTC) == "06:00:00  vertex    - 123 (train) gone (was SUCCEEDED)"
    down = {"type": "source", "ts": "2026-11-22T06:00:00.000Z", "source": "active", "state": "timeout",
            "rows": 2, "took_s": 30.0, "error": "no answer within 30s", "stale_s": 125.0}
    assert render.event_line(down, NOW, PLAIN, UTC) == \
        "06:00:00  active    ! timeout: no answer within 30s (showing rows from 2m ago)"
    beat = render.heartbeat_event("2026-11-22T06:00:00.000Z", 7, {
        "runner": SourceResult("runner", rows=[running_row(), failed_row()]),
        "vertex": SourceResult("vertex", state="timeout")})
    assert beat == {"type": "heartbeat", "ts": "2026-11-22T06:00:00.000Z", "cycle": 7,
                    "sources": {"runner": "ok", "vertex": "timeout"}, "running": 1}
    assert render.event_line(beat, NOW, PLAIN, UTC) == \
        "06:00:00  · heartbeat  cycle 7, 1 running; runner=ok vertex=timeout"


def test_get_tables_and_status_lines():
    results = {
        "runner": SourceResult("runner", rows=[running_row(), failed_row()]),
        "builds": SourceResult("builds", state="timeout", error="no answer within 5s", stale_s=90.0, rows=[
            make_row("builds", "b1", "QUEUED", created="2026-11-22T05:50:00Z", extra={"table": "active"})]),
    }
    assert render.tables(results, NOW, PLAIN, UTC) == [
        "Runner executions",
        "  STATUS   ID                        REGION        STARTED   TIME  MESSAGE",
        "  RUNNING  vertex-ai-launcher-abc12  us-central1   12m ago   12m",
        "  FAILED   vertex-ai-launcher-zz9    europe-west2  119m ago  1m    Quota 'NVIDIA_L4_GPUS' exceeded. Limit: 0.0 in region us-west2.",
        "",
        "Active builds  [timeout, 1m old]",
        "  STATUS  ID  REGION  STARTED  TIME  MESSAGE",
        "  QUEUED  b1  -       10m ago  10m",
        "",
        "Recent builds  [timeout, 1m old]",
        "  (none)",
        "",
        "! builds: timeout: no answer within 5s (showing rows from 1m ago)",
    ]


def test_ndjson_records_have_stable_keys_rows_first():
    results = {"vertex": SourceResult("vertex", rows=[make_row("vertex", "1", "RUNNING")], took_s=0.5)}
    lines = list(render.ndjson_records(results))
    assert lines[0] == render.ndjson(render.row_record(results["vertex"].rows[0]))
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    first, last = (orjson.loads(line) for line in lines)
    assert list(first) == ["type", "source", "id", "status", "raw_status", "region", "name", "created", "started",
                           "finished", "duration_s", "message", "category", "url", "links", "extra"]
    assert last == {"type": "source", "source": "vertex", "state": "ok", "rows": 1, "took_s": 0.5,
                    "error": None, "stale_s": None}


def test_hostile_text_never_reaches_the_terminal_raw():
    row = make_row("runner", "x\x1b]0;pwned\x07", "FAILED", message="boom\x1b[2J\x00 done")
    line = render.event_line({"type": "added", "ts": None, "source": "runner", "id": "x", "row": row}, NOW, PLAIN, UTC)
    assert "\x1b" not in line and "\x00" not in line and "\x07" not in line


def test_on_a_terminal_the_message_is_cut_to_fit_the_width():
    event = {"type": "added", "ts": "2026-11-22T06:00:00.000Z", "source": "runner", "id": "x",
             "row": make_row("runner", "exec-1", "FAILED", message="Quota " + "x" * 200)}
    line = render.event_line(event, NOW, PLAIN, UTC, width=80)
    assert len(line) == 80 and line.endswith("…")
    assert render.event_line(event, NOW, PLAIN, UTC).endswith("x" * 50)  # in a pipe, whole


def test_local_times_use_the_offset_in_force_at_that_moment(monkeypatch):
    import time as _time

    monkeypatch.setenv("TZ", "Europe/London")
    _time.tzset()
    try:
        assert render.local_stamp("2026-07-01T12:00:00Z") == "07-01 13:00"  # BST
        assert render.local_stamp("2026-12-01T12:00:00Z") == "12-01 12:00"  # GMT
    finally:
        monkeypatch.delenv("TZ")
        _time.tzset()


def test_colour_codes_make_failed_bold_and_red():
    painted = render.Style(True).status("FAILED")
    assert painted.startswith("\x1b[31m\x1b[1m") and "\x1b[22m" not in painted


def test_a_partial_failure_says_which_rows_are_from_memory():
    rows = [make_row("runner", "fresh", "RUNNING", region="us-central1"),
            make_row("runner", "old", "FAILED", region="europe-west4")]
    result = SourceResult("runner", state="error", error="1 of 2 regions failed: europe-west4: 403 Forbidden",
                          rows=rows, stale_s=60.0, missing=["europe-west4"], from_memory={"old"})
    lines = render.tables({"runner": result}, NOW, PLAIN, UTC)
    assert lines[0] == "Runner executions  [error, partly 1m old]"
    assert lines[-1] == ("! runner: error: 1 of 2 regions failed: europe-west4: 403 Forbidden "
                         "(showing the rows of europe-west4 from 1m ago)")


def build_row(message: str | None = None, name: str = "arr-trainer:latest-with-a-long-tag"):
    return make_row("builds", "4f5e6d7c-8b9a-4a0b-9c1d-2e3f4a5b6c66", "FAILED", name=name, region="global",
                    created="2026-11-22T05:50:00Z", started="2026-11-22T05:50:10Z", duration_s=30.0,
                    message=message, extra={"table": "recent"})


LONG = " ".join(['Step #2 - "push": denied: Permission "artifactregistry.repositories.uploadArtifacts" denied'] * 2)


def test_tables_fit_the_terminal_message_first_then_the_name():
    from arrctl.textfit import display_width

    results = {"builds": SourceResult("builds", rows=[build_row(LONG), build_row("short", name="n")])}
    whole = render.tables(results, NOW, PLAIN, UTC)
    assert any(LONG in line for line in whole)  # a pipe: no cut at all
    at200 = render.tables(results, NOW, PLAIN, UTC, width=200)
    assert max(display_width(line) for line in at200) == 200
    assert "arr-trainer:latest-with-a-long-tag" in at200[5]  # the message gave way, the name is whole
    assert at200[5].endswith("…") and "Permission" in at200[5]
    at120 = render.tables(results, NOW, PLAIN, UTC, width=120)
    assert max(display_width(line) for line in at120) == 120
    # the message kept its 20 columns minimum, then the name shrank
    assert "  arr-trainer:latest-with-…  global" in at120[5]
    assert at120[5].endswith('  30s   Step #2 - "push": d…')
    at40 = render.tables(results, NOW, PLAIN, UTC, width=40)
    assert all(display_width(line) <= 40 for line in at40)
    assert at40[5] == "  FAILED  4f5e6d7c-8b9a-4a0b-9c1d-2e3f4…"


def test_watch_lines_fit_the_terminal_message_first_then_the_name():
    from arrctl.textfit import display_width

    event = {"type": "changed", "ts": "2026-11-22T06:00:00.000Z", "source": "builds", "id": "x",
             "row": build_row(LONG), "changes": {"status": ["RUNNING", "FAILED"]}}
    whole = render.event_line(event, NOW, PLAIN, UTC)
    assert whole.endswith(LONG)
    for width in (200, 120, 80, 60, 30):
        line = render.event_line(event, NOW, PLAIN, UTC, width=width)
        assert display_width(line) <= width, (width, line)
    assert "(arr-trainer:latest-with-a-long-tag)  RUNNING → FAILED  global  Step #2" in \
        render.event_line(event, NOW, PLAIN, UTC, width=200)
    at80 = render.event_line(event, NOW, PLAIN, UTC, width=80)
    assert "RUNNING → FAILED" in at80 and "(arr-trainer" not in at80  # the name went after the message
    assert render.event_line(event, NOW, PLAIN, UTC, width=76) == (
        "06:00:00  builds    ~ 4f5e6d7c-8b9a-4a0b-9c1d-2e3f4a5b6c66  RUNNING → FAILED")


def test_colour_does_not_count_and_wide_characters_count_twice():
    from arrctl.sanitize import strip_escapes
    from arrctl.textfit import cut, display_width

    assert display_width("日本語") == 6 and display_width("e\u0301") == 1
    assert cut("日本語テキスト", 7) == "日本語…" and display_width(cut("日本語テキスト", 7)) == 7
    event = {"type": "added", "ts": "2026-11-22T06:00:00.000Z", "source": "runner", "id": "x",
             "row": make_row("runner", "exec-1", "FAILED", message="失敗しました " * 20)}
    line = render.event_line(event, NOW, render.Style(True), UTC, width=80)
    assert "\x1b[" in line and display_width(strip_escapes(line)) <= 80


def test_ages_count_as_kubectl_does():
    from arrctl.columns import age

    assert [age(s) for s in (None, -3, 45, 119, 303, 600, 5700, 19800, 28800, 108000, 273600, 691200)] == [
        "-", "0s ago", "45s ago", "119s ago", "5m3s ago", "10m ago", "95m ago", "5h30m ago", "8h ago", "30h ago",
        "3d4h ago", "8d ago"]


def wide_rows():
    vertex = make_row("vertex", "1428571428571428013", "FAILED", region="us-central1", name="arr-coc-train-p2t6v9jx",
                      created="2026-11-22T02:00:00Z", started="2026-11-22T02:00:30Z", duration_s=1800.0,
                      message="exit 1", url="https://console.cloud.google.com/vertex-ai/j13",
                      links={"wandb_run": "p2t6v9jx"}, extra={"machine_type": "g2-standard-4",
                                                              "accelerator": "NVIDIA_L4 x1"})
    cpu = make_row("vertex", "99", "RUNNING", region="us-central1", created="2026-11-22T05:00:00Z",
                   started="2026-11-22T05:00:00Z", url="https://console.cloud.google.com/vertex-ai/j99",
                   extra={"machine_type": "n1-standard-8", "accelerator": None})
    runner = make_row("runner", "vertex-ai-launcher-t2v6b", "FAILED", region="us-central1", name="vertex-ai-launcher",
                      created="2026-11-21T22:00:00Z", started="2026-11-21T22:00:10Z", duration_s=70.0,
                      message="KeyError: 'runQueueItemId'", url="https://console.cloud.google.com/run/t2v6b",
                      extra={"job": "vertex-ai-launcher", "task_count": 1, "succeeded": 0, "failed": 1,
                             "running": 0, "retried": 2, "cancelled": 0})
    wandb = make_row("active", "p6z3k9mh", "RUNNING", name="bright-ember-54", created="2026-11-22T05:10:00Z",
                     started="2026-11-22T05:10:00Z", url="https://wandb.ai/e/p/runs/p6z3k9mh",
                     links={"vertex_job": "1428571428571428022", "queue_items": ["q1", "q2"]},
                     extra={"user": "alice", "tags": ["launch", "spot"], "heartbeat_at": "2026-11-22T05:35:00Z",
                            "step": 610})
    return {"runner": SourceResult("runner", rows=[runner]), "vertex": SourceResult("vertex", rows=[vertex, cpu]),
            "active": SourceResult("active", rows=[wandb])}


def test_wide_tables_add_each_sources_columns_links_and_the_url_with_absolute_times():
    assert render.tables(wide_rows(), NOW, PLAIN, UTC, width=80, wide=True) == [  # whole cells, whatever the width
        "Runner executions",
        "  STATUS  ID                        REGION       STARTED      TIME  TASKS                      URL"
        "                                         MESSAGE",
        "  FAILED  vertex-ai-launcher-t2v6b  us-central1  11-21 22:00  1m    0/1 (1 failed, 2 retried)  "
        "https://console.cloud.google.com/run/t2v6b  KeyError: 'runQueueItemId'",
        "",
        "Vertex AI custom jobs",
        "  STATUS   ID                   NAME                    REGION       STARTED      TIME   MACHINE        "
        "ACCELERATOR   LINKS               URL                                             MESSAGE",
        "  FAILED   1428571428571428013  arr-coc-train-p2t6v9jx  us-central1  11-22 02:00  30m    g2-standard-4  "
        "NVIDIA_L4 x1  wandb_run=p2t6v9jx  https://console.cloud.google.com/vertex-ai/j13  exit 1",
        "  RUNNING  99                                           us-central1  11-22 05:00  1h00m  n1-standard-8  "
        "-             -                   https://console.cloud.google.com/vertex-ai/j99",
        "",
        "Active W&B runs",
        "  STATUS   ID        NAME             REGION  STARTED      TIME  USER   TAGS         HEARTBEAT  STEP  "
        "LINKS                                             URL                                 MESSAGE",
        "  RUNNING  p6z3k9mh  bright-ember-54  -       11-22 05:10  50m   alice  launch,spot  25m ago    610   "
        "vertex_job=1428571428571428022 queue_items=q1,q2  https://wandb.ai/e/p/runs/p6z3k9mh",
        "",
    ]


def test_default_tables_say_how_long_ago_and_show_no_links():
    lines = render.tables(wide_rows(), NOW, PLAIN, UTC)
    assert lines[1:3] == ["  STATUS  ID                        REGION       STARTED    TIME  MESSAGE",
                          "  FAILED  vertex-ai-launcher-t2v6b  us-central1  7h59m ago  1m    KeyError: 'runQueueItemId'"]
    assert not any("wandb_run" in line or "https://" in line for line in lines)


def test_names_headers_and_hidden_rows():
    results = wide_rows()
    results["vertex"].hidden = [make_row("vertex", "h1", "SUCCEEDED"), make_row("vertex", "h2", "SUCCEEDED")]
    results["active"].hidden, results["active"].rows = results["active"].rows, []
    results["builds"] = SourceResult("builds", state="timeout", error="no answer within 5s",
                                     hidden=[make_row("builds", "b1", "SUCCEEDED", extra={"table": "recent"})])
    assert render.names(results) == ["vertex-ai-launcher-t2v6b", "1428571428571428013", "99"]
    lines = render.tables(results, NOW, PLAIN, UTC)
    assert lines[4:13] == [
        "Vertex AI custom jobs",
        "  STATUS   ID                   NAME                    REGION       STARTED    TIME   MESSAGE",
        "  FAILED   1428571428571428013  arr-coc-train-p2t6v9jx  us-central1  3h59m ago  30m    exit 1",
        "  RUNNING  99                                           us-central1  60m ago    1h00m",
        "  (2 hidden by filters)",
        "",
        "Active W&B runs",
        "  (1 hidden by filters)",
        "",
    ]
    assert lines[13:] == ["Active builds  [timeout]", "  (none)", "", "Recent builds  [timeout]",
                          "  (1 hidden by filters)", "", "! builds: timeout: no answer within 5s"]
    bare, notes = render.get_text(results, NOW, PLAIN, headers=False, tz=UTC)
    assert bare == [
        "  FAILED  vertex-ai-launcher-t2v6b  us-central1  7h59m ago  1m    KeyError: 'runQueueItemId'",
        "  FAILED   1428571428571428013  arr-coc-train-p2t6v9jx  us-central1  3h59m ago  30m    exit 1",
        "  RUNNING  99                                           us-central1  60m ago    1h00m",
    ]
    assert notes == ["! builds: timeout: no answer within 5s"]
    assert render.get_text(results, NOW, PLAIN, shape="name") == (render.names(results), notes)
