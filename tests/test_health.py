"""Health rules and the check formats, checked against their specs."""

from __future__ import annotations

import datetime as dt
import re

import orjson
from prometheus_client.parser import text_string_to_metric_families

from arrctl import health
from arrctl.kinds import ErrorKind
from arrctl.model import SourceResult, make_row

NOW = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.timezone.utc).timestamp()
LIMITS = health.Thresholds(heartbeat_warn_s=600, queued_warn_s=600)
# Monitoring Plugins guidelines: 'label'=value[UOM];[warn];[crit];[min];[max]
PERF = re.compile(r"^'[^'=]+'=-?\d+(\.\d+)?(s|%|B|KB|MB|TB|c|us|ms)?(;(-?\d+(\.\d+)?)?){0,4}$")
FIRST = re.compile(r"^ARRCTL (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| (.+)$")


def failed(source="runner", id="exec-1", message="Quota 'NVIDIA_L4_GPUS' exceeded."):
    return make_row(source, id, "FAILED", message=message)


def results(**rows):
    out = {s: SourceResult(s) for s in ("runner", "builds", "vertex", "active", "completed")}
    for source, items in rows.items():
        out[source].rows = items
    return out


def test_new_failure_is_critical_with_its_error_in_the_first_line():
    res = results(runner=[failed()])
    verdict = health.judge(res, {("runner", "exec-1")}, NOW, LIMITS)
    assert (verdict.code, verdict.state, verdict.new_failures) == (2, "CRITICAL", 1)
    assert verdict.summary == "1 new failure: runner exec-1: Quota 'NVIDIA_L4_GPUS' exceeded."
    first = health.nagios(verdict).splitlines()[0]
    assert first.startswith("ARRCTL CRITICAL - 1 new failure: runner exec-1: Quota 'NVIDIA_L4_GPUS' exceeded. | ")


def test_already_reported_failure_is_ok_next_time():
    verdict = health.judge(results(runner=[failed()]), set(), NOW, LIMITS)
    assert verdict.state == "OK" and verdict.summary == "5 sources answered, 0 running, no new failures"


def test_failure_keys_skip_non_failures_and_builds_when_told_to_ignore_them():
    res = results(runner=[failed(), make_row("runner", "ok", "SUCCEEDED")], builds=[failed("builds", "b")],
                  completed=[failed("completed", "run-9")])
    assert health.failure_keys(res) == [("runner", "exec-1"), ("builds", "b"), ("completed", "run-9")]
    assert health.failure_keys(res, builds="ignore") == [("runner", "exec-1"), ("completed", "run-9")]


def build_failures():
    return results(builds=[failed("builds", "b1", "Build step failure: build step 0 failed"),
                           make_row("builds", "b2", "TIMEOUT", message="Build timed out after 1200s",
                                    category="timeout"),
                           make_row("builds", "b3", "CANCELLED")])


def test_a_failed_or_timed_out_build_is_a_warning_by_default():
    res = build_failures()
    assert health.failure_keys(res) == [("builds", "b1"), ("builds", "b2")]
    verdict = health.judge(res, {("builds", "b1"), ("builds", "b2")}, NOW, LIMITS)
    assert (verdict.state, verdict.new_failures) == ("WARNING", 0)
    assert verdict.summary == ("2 warnings: builds b1: Build step failure: build step 0 failed; "
                               "builds b2: Build timed out after 1200s")
    assert [(p["severity"], p["kind"], p["id"], p["category"]) for p in verdict.problems] == [
        ("WARNING", "build_failure", "b1", "unknown"), ("WARNING", "build_failure", "b2", "timeout")]
    assert "\narrctl_new_build_failures 2\n" in health.prometheus(verdict, NOW)
    assert health.judge(res, set(), NOW, LIMITS).state == "OK"  # reported before: once only


def test_build_failures_can_be_critical_or_ignored():
    res = build_failures()
    critical = health.judge(res, {("builds", "b1")}, NOW, health.Thresholds(build_failure_severity="critical"))
    assert (critical.state, critical.new_failures) == ("CRITICAL", 1)
    assert critical.summary == "1 new failure: builds b1: Build step failure: build step 0 failed"
    ignored = health.judge(res, {("builds", "b1")}, NOW, health.Thresholds(build_failure_severity="ignore"))
    assert (ignored.state, ignored.problems) == ("OK", [])
    assert health.failure_keys(res, builds="ignore") == []


def test_rows_hidden_by_filters_are_said_in_the_summary():
    res = results()
    res["vertex"].hidden = [failed("vertex", "j1"), failed("vertex", "j2")]
    assert health.judge(res, set(), NOW, LIMITS).summary == (
        "5 sources answered, 0 running, no new failures; 2 rows hidden by filters")


def test_failure_keys_wait_for_the_runners_error_and_skip_rows_from_memory():
    res = results(runner=[failed(message=None), failed(id="exec-2")],
                  vertex=[failed("vertex", "j1"), failed("vertex", "j2", message=None)])
    res["vertex"].state = "error"  # one region failed: j1 is from memory, j2 arrived fresh
    res["vertex"].from_memory = {"j1"}
    assert health.failure_keys(res) == [("runner", "exec-2"), ("vertex", "j2")]
    verdict = health.judge(res, {("vertex", "j2")}, NOW, LIMITS)
    assert "vertex j2: failed (no error text)" in verdict.summary


def test_missing_credentials_are_unknown():
    res = results()
    for source in ("runner", "builds", "vertex"):
        res[source] = SourceResult(source, state="error", error_kind=ErrorKind.CREDENTIALS,
                                   error="no Google credentials: run `gcloud auth application-default login`, or use --demo")
    verdict = health.judge(res, set(), NOW, LIMITS)
    assert verdict.state == "UNKNOWN" and verdict.summary.startswith("configuration or credentials prevent a judgement: runner error")


def test_the_kind_of_an_error_decides_not_its_words():
    """An error that only speaks of credentials is a source down (WARNING); one made as a
    configuration error is UNKNOWN, whatever it says."""
    res = results()
    res["vertex"] = SourceResult("vertex", state="error", error="403 Forbidden: no credentials: for you",
                                 error_kind=ErrorKind.OTHER)
    assert health.judge(res, set(), NOW, LIMITS).state == "WARNING"
    res["active"] = SourceResult("active", state="error", error="W&B: something", error_kind=ErrorKind.CONFIGURATION)
    verdict = health.judge(res, set(), NOW, LIMITS)
    assert (verdict.state, verdict.summary) == ("UNKNOWN", "configuration or credentials prevent a judgement: "
                                                           "active error: W&B: something")


def test_warnings_source_down_stale_heartbeat_long_queue():
    stale = make_row("active", "run-1", "RUNNING", extra={"heartbeat_at": "2026-11-22T05:30:00Z"})
    fresh = make_row("active", "run-2", "RUNNING", extra={"heartbeat_at": "2026-11-22T05:59:00Z"})
    queued = make_row("builds", "b1", "QUEUED", created="2026-11-22T05:00:00Z")
    res = results(active=[stale, fresh], builds=[queued])
    res["vertex"] = SourceResult("vertex", state="timeout", error="no answer within 30s")
    verdict = health.judge(res, set(), NOW, LIMITS)
    assert verdict.state == "WARNING"
    assert [(p["kind"], p["source"], p["id"], p["message"]) for p in verdict.problems] == [
        ("source_timeout", "vertex", None, "vertex timeout: no answer within 30s"),
        ("stale_heartbeat", "active", "run-1", "no heartbeat for 30m (limit 10m)"),
        ("queued_build", "builds", "b1", "queued for 1h00m (limit 10m)"),
    ]


def test_nothing_answered_or_no_state_is_unknown():
    down = {s: SourceResult(s, state="error", error="no Google credentials") for s in ("runner", "vertex")}
    assert health.judge(down, set(), NOW, LIMITS).state == "UNKNOWN"
    assert health.judge(results(), set(), NOW, LIMITS, persistent=False).code == 3
    assert health.unknown("cfg: bad").summary == "cfg: bad"


def test_nagios_output_follows_the_plugin_grammar_and_stays_under_8kb():
    many = [failed(id=f"exec-{i}", message="é" * 300) for i in range(100)]  # 2 bytes a character
    verdict = health.judge(results(runner=many), {("runner", f"exec-{i}") for i in range(100)}, NOW, LIMITS)
    text = health.nagios(verdict)
    assert len(text.encode()) < 8192
    assert len(text.splitlines()[0].encode()) <= 1024
    match = FIRST.match(text.splitlines()[0])
    assert match, text.splitlines()[0]
    for item in match.group(2).split(" "):
        assert PERF.match(item), item
    assert "e+" not in text and "e-0" not in text


def test_json_format_has_the_spec_keys():
    verdict = health.judge(results(runner=[failed()]), {("runner", "exec-1")}, NOW, LIMITS)
    obj = orjson.loads(orjson.dumps(health.as_json(verdict)))
    assert list(obj) == ["state", "code", "summary", "problems", "sources"]
    assert (obj["state"], obj["code"]) == ("CRITICAL", 2)
    assert obj["sources"]["runner"] == {"state": "ok", "rows": 1, "took_s": 0.0, "error": None, "stale_s": None}


def test_prometheus_text_parses_and_has_no_timestamps():
    res = results(runner=[failed(), make_row("runner", "r", "RUNNING")])
    res["vertex"] = SourceResult("vertex", state="error", error='bad "quote"\\ here', took_s=1.25)
    text = health.prometheus(health.judge(res, {("runner", "exec-1")}, NOW, LIMITS), NOW)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    up = {s.labels["source"]: s.value for s in families["arrctl_source_up"].samples}
    assert up == {"runner": 1, "builds": 1, "vertex": 0, "active": 1, "completed": 1}
    rows = {(s.labels["source"], s.labels["status"]): s.value for s in families["arrctl_rows"].samples}
    assert rows == {("runner", "FAILED"): 1, ("runner", "RUNNING"): 1}
    assert families["arrctl_check_state"].samples[0].value == 2
    assert all(s.timestamp is None for f in families.values() for s in f.samples)
    for name in families:
        assert text.count(f"# HELP {name} ") == 1 and text.count(f"# TYPE {name} ") == 1


def test_a_build_pending_approval_is_covered_by_the_queue_limit():
    pending = make_row("builds", "b2", "PENDING", created="2026-11-22T05:30:00Z", raw_status="PENDING")
    fresh = make_row("builds", "b3", "PENDING", created="2026-11-22T05:55:00Z")
    verdict = health.judge(results(builds=[pending, fresh]), set(), NOW, LIMITS)
    assert verdict.state == "WARNING"
    assert [(p["kind"], p["id"], p["message"]) for p in verdict.problems] == [
        ("queued_build", "b2", "pending for 30m (limit 10m)")]


def test_a_runner_timeout_pages_like_a_failure():
    timed_out = make_row("runner", "exec-t", "TIMEOUT", message="ReadTimeout: read timed out")
    vertex_expired = make_row("vertex", "j-x", "TIMEOUT", message="expired")  # SPEC: JOB_STATE_FAILED only
    res = results(runner=[timed_out], vertex=[vertex_expired])
    assert health.failure_keys(res) == [("runner", "exec-t")]
    verdict = health.judge(res, {("runner", "exec-t"), ("vertex", "j-x")}, NOW, LIMITS)
    assert (verdict.state, verdict.summary) == ("CRITICAL", "1 new failure: runner exec-t: ReadTimeout: read timed out")


def test_cloud_runs_words_shown_while_the_logs_are_unread_do_not_page():
    # the condition text stands in for the message (issue 12); the page waits for the root error
    unread = make_row("runner", "exec-u", "FAILED", message="Cloud Run: Task exec-u-task0 failed",
                      extra={"condition": "Task exec-u-task0 failed", "logs_unread": True})
    assert health.failure_keys(results(runner=[unread])) == []
    read = {**unread, "message": "KeyError: 'runQueueItemId'", "extra": {"condition": "Task exec-u-task0 failed"}}
    assert health.failure_keys(results(runner=[read])) == [("runner", "exec-u")]


def test_new_failures_perfdata_alerts_on_one_by_the_plugin_range_rules():
    verdict = health.judge(results(runner=[failed()]), {("runner", "exec-1")}, NOW, LIMITS)
    perf = health.nagios(verdict).splitlines()[0].split(" | ")[1].split(" ")
    # a threshold N means "alert outside 0..N": crit 0 alerts on 1 new failure, crit 1 would not
    assert perf[0] == "'new_failures'=1;;0;0"


def test_warning_summary_names_the_run_and_the_build():
    stale = make_row("active", "run-1", "RUNNING", extra={"heartbeat_at": "2026-11-22T05:30:00Z"})
    queued = make_row("builds", "b1", "QUEUED", created="2026-11-22T05:00:00Z")
    res = results(active=[stale], builds=[queued])
    res["vertex"] = SourceResult("vertex", state="timeout", error="no answer within 30s")
    verdict = health.judge(res, set(), NOW, LIMITS)
    assert verdict.summary == ("3 warnings: vertex timeout: no answer within 30s; active run-1: no heartbeat for 30m "
                               "(limit 10m); builds b1: queued for 1h00m (limit 10m)")


def test_unusable_state_reports_no_new_failures():
    verdict = health.judge(results(runner=[failed()]), {("runner", "exec-1")}, NOW, LIMITS, persistent=False)
    assert (verdict.state, verdict.new_failures) == ("UNKNOWN", 0)
    assert not [p for p in verdict.problems if p["kind"] == "new_failure"]
    assert verdict.summary.endswith("(1 failure in view)")
    assert "'new_failures'=0;" in health.nagios(verdict)
    assert set(re.findall(r'^arrctl_new_failures\{category="\w+"\} (\d+)$', health.prometheus(verdict, NOW),
                          re.M)) == {"0"}


def test_a_first_check_says_how_many_old_failures_it_did_not_page():
    verdict = health.judge(results(runner=[failed()]), {("runner", "exec-1")}, NOW, LIMITS, skipped=6,
                           first_window_s=3600)
    assert verdict.summary.endswith("; first check: 6 failures that ended over 1h00m ago recorded as seen, not paged")
    assert verdict.state == "CRITICAL" and verdict.skipped_failures == 6
    assert "'skipped_failures'=6;;;0" in health.nagios(verdict)
    assert "\narrctl_skipped_failures 6\n" in health.prometheus(verdict, NOW)
    quiet = health.judge(results(), set(), NOW, LIMITS, skipped=1)
    assert quiet.state == "OK" and "first check: 1 failure that ended" in quiet.summary


def test_a_later_check_says_how_many_old_failures_came_into_view_unpaged():
    verdict = health.judge(results(), set(), NOW, LIMITS, late=1, first_window_s=3600)
    assert verdict.state == "OK" and "first check:" not in verdict.summary
    assert verdict.summary.endswith("; 1 failure that ended over 1h00m before the first check came into view, "
                                    "recorded as seen, not paged")
    assert verdict.skipped_failures == 1 and "\narrctl_skipped_failures 1\n" in health.prometheus(verdict, NOW)


def test_failure_ends_use_the_finish_else_the_creation():
    res = results(runner=[make_row("runner", "e1", "FAILED", message="m", finished="2026-11-22T05:00:00Z",
                                   created="2026-11-22T04:00:00Z")],
                  completed=[make_row("completed", "r1", "FAILED", created="2026-11-22T03:00:00Z"),
                             make_row("completed", "r2", "FAILED")])
    assert health.failure_ends(res) == {("runner", "e1"): NOW - 3600, ("completed", "r1"): NOW - 3 * 3600,
                                        ("completed", "r2"): None}


def test_a_new_failure_carries_its_category_in_json_and_prometheus():
    oom = make_row("vertex", "j-1", "FAILED", message="torch.OutOfMemoryError: CUDA out of memory.", category="oom")
    verdict = health.judge(results(vertex=[oom]), {("vertex", "j-1")}, NOW, LIMITS)
    (found,) = [p for p in verdict.problems if p["kind"] == "new_failure"]
    assert list(found) == ["severity", "kind", "source", "id", "message", "category", "url"]  # SPEC's keys
    assert found["category"] == "oom"
    text = health.prometheus(verdict, NOW)
    assert 'arrctl_new_failures{category="oom"} 1' in text
    assert 'arrctl_new_failures{category="quota"} 0' in text  # every category has its series
    warning = health.judge(results(), set(), NOW, LIMITS, persistent=True)
    assert all(p["category"] is None for p in warning.problems)
