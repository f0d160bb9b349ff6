"""Row filters (pure): parsing the flags, matching rows, applying to results and to watch events."""

from __future__ import annotations

import datetime as dt

import pytest

from arrctl import filters
from arrctl.filters import FilterError, RowFilter, parse_filter
from arrctl.model import SourceResult, make_row

NOW = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.timezone.utc).timestamp()


def vertex(id_: str, status: str, region: str = "us-central1", created: str = "2026-11-22T05:00:00Z",
           finished: str | None = None, name: str | None = None):
    return make_row("vertex", id_, status, region=region, created=created, finished=finished, name=name)


def run(id_: str, status: str, user: str | None = "alice", tags=("launch",), created="2026-11-22T05:00:00Z"):
    return make_row("completed", id_, status, name=f"{id_}-name", created=created,
                    extra={"user": user, "tags": list(tags)})


def test_statuses_are_any_case_comma_separated_and_repeatable():
    assert parse_filter(status=("failed,Timeout", "RUNNING")).statuses == {"FAILED", "TIMEOUT", "RUNNING"}
    with pytest.raises(FilterError) as err:
        parse_filter(status=("failed,crashed",))
    assert str(err.value) == ("--status: 'crashed' is not a status (expected one or more of: queued, pending, "
                              "running, succeeded, failed, cancelled, timeout, unknown, comma separated)")


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("3d", 259200), ("1w", 604800),
                                           ("1h30m", 5400), ("1.5h", 5400), ("2H", 7200)])
def test_durations(text: str, seconds: float):
    assert filters.parse_duration(text) == seconds


@pytest.mark.parametrize("text, why", [("2", "is not a duration"), ("h", "is not a duration"), ("-2h", "is not a duration"),
                                       ("2 hours", "is not a duration"), ("0m", "is out of range"),
                                       ("400d", "is out of range"), ("", "is not a duration")])
def test_bad_durations_name_the_flag(text: str, why: str):
    with pytest.raises(FilterError) as err:
        parse_filter(since=text)
    assert str(err.value).startswith(f"--since: {text!r} {why} (expected ")


def test_an_empty_value_is_an_error():
    with pytest.raises(FilterError, match=r"^--region: expected a value, got an empty string$"):
        parse_filter(region=("",))


def test_no_flags_is_no_filter():
    results = {"vertex": SourceResult("vertex", rows=[vertex("1", "FAILED")])}
    assert not parse_filter().active
    assert filters.apply(results, parse_filter(), NOW) is results


def test_flags_and_together_values_or_together():
    rows = [vertex("1", "FAILED"), vertex("2", "FAILED", region="europe-west4"), vertex("3", "RUNNING"),
            vertex("4", "TIMEOUT", region="US-CENTRAL1")]
    select = parse_filter(status=("failed,timeout",), region=("us-central1",))
    assert [r["id"] for r in rows if select.matches(r, NOW)] == ["1", "4"]


def test_since_counts_creation_or_finish():
    old_but_just_ended = vertex("a", "FAILED", created="2026-11-19T00:00:00Z", finished="2026-11-22T05:30:00Z")
    old = vertex("b", "SUCCEEDED", created="2026-11-19T00:00:00Z", finished="2026-11-19T02:00:00Z")
    new = vertex("c", "RUNNING", created="2026-11-22T04:30:00Z")
    undated = vertex("d", "UNKNOWN", created=None)
    select = parse_filter(since="2h")
    assert [r["id"] for r in (old_but_just_ended, old, new, undated) if select.matches(r, NOW)] == ["a", "c"]


def test_name_globs_match_the_id_or_the_name():
    rows = [vertex("1428571428571428013", "FAILED", name="arr-coc-train-p2t6v9jx"),
            vertex("2857142857142856002", "FAILED", name="arr-coc-eval"), vertex("999", "FAILED")]
    assert [r["id"] for r in rows if parse_filter(name=("*-train-*",)).matches(r, NOW)] == ["1428571428571428013"]
    assert [r["id"] for r in rows if parse_filter(name=("2857*", "9?9")).matches(r, NOW)] == \
        ["2857142857142856002", "999"]
    assert not parse_filter(name=("ARR-*",)).matches(rows[0], NOW)  # case-sensitive, as a shell glob


def test_user_and_tag_match_wandb_runs_and_nothing_without_them():
    rows = [run("r1", "FAILED", user="alice", tags=("launch", "spot")), run("r2", "FAILED", user="Bob"),
            run("r3", "FAILED", user=None, tags=()), vertex("j1", "FAILED")]
    assert [r["id"] for r in rows if parse_filter(user=("bob,carol",)).matches(r, NOW)] == ["r2"]
    assert [r["id"] for r in rows if parse_filter(tag=("spot",)).matches(r, NOW)] == ["r1"]
    assert [r["id"] for r in rows if parse_filter(user=("alice",), tag=("launch",)).matches(r, NOW)] == ["r1"]


def test_apply_keeps_the_hidden_rows_apart_and_the_source_state():
    results = {"vertex": SourceResult("vertex", state="timeout", error="no answer", stale_s=60.0,
                                      rows=[vertex("1", "FAILED"), vertex("2", "RUNNING")], from_memory={"1", "2"}),
               "builds": SourceResult("builds")}
    shown = filters.apply(results, parse_filter(status=("running",)), NOW)
    assert list(shown) == ["vertex", "builds"]
    assert [r["id"] for r in shown["vertex"].rows] == ["2"] and [r["id"] for r in shown["vertex"].hidden] == ["1"]
    assert (shown["vertex"].state, shown["vertex"].stale_s, shown["vertex"].from_memory) == ("timeout", 60.0, {"1", "2"})
    assert [r["id"] for r in results["vertex"].rows] == ["1", "2"] and results["vertex"].hidden == []  # untouched
    assert filters.hidden_count(shown) == 1


def test_watch_events_pass_when_the_row_matched_before_or_after():
    failed = vertex("1", "FAILED")
    went_bad = {"type": "changed", "id": "1", "source": "vertex", "row": failed, "changes": {"status": ["RUNNING", "FAILED"]}}
    done = {"type": "changed", "id": "2", "source": "vertex", "row": vertex("2", "SUCCEEDED"),
            "changes": {"status": ["PENDING", "SUCCEEDED"]}}
    added = {"type": "added", "id": "3", "source": "vertex", "row": vertex("3", "RUNNING")}
    gone = {"type": "removed", "id": "4", "source": "vertex", "row": vertex("4", "QUEUED")}
    state = {"type": "source", "source": "vertex", "state": "timeout"}
    events = [went_bad, done, added, gone, state]
    assert filters.select_events(events, parse_filter(status=("running",)), NOW) == [went_bad, added, state]
    assert filters.select_events(events, parse_filter(status=("failed",)), NOW) == [went_bad, state]
    assert filters.select_events(events, RowFilter(), NOW) is events
