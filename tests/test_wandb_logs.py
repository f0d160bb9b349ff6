"""sources/wandb_logs.py and the fake's storage: the pure parts, exact."""

from __future__ import annotations

from arrctl.model import make_row
from arrctl.sandbox.base import byte_range
from arrctl.sandbox.wandb_files import like
from arrctl.sources import logs
from arrctl.sources.wandb_logs import (
    Tail, conclude, content_start, needs_console, problem, provisional, read_outcome, tail_request, tail_text)

NOW = 1_795_000_000.0


def run_row(run_id: str, raw: str, finished: str | None = "2026-11-18T10:00:00Z", message: str | None = "run failed"):
    status = {"failed": "FAILED", "crashed": "FAILED", "finished": "SUCCEEDED", "killed": "CANCELLED"}[raw]
    return make_row("completed", run_id, status, raw_status=raw, finished=finished, message=message,
                    extra={"api_message": message})


def test_only_failed_and_crashed_runs_not_remembered_are_read():
    rows = [run_row("a", "failed"), run_row("b", "crashed"), run_row("c", "finished", message=None),
            run_row("d", "killed"), run_row("e", "failed")]
    assert [r["id"] for r in needs_console(rows, frozenset({"e"}))] == ["a", "b"]
    marked = provisional(rows, {"a"})
    assert marked[0]["extra"] == {"api_message": "run failed", "logs_unread": True} and marked[1] == rows[1]


def test_the_tail_is_asked_of_the_signed_url_without_credentials():
    node = {"directUrl": "https://storage.googleapis.com/b/e/p/r/output.log?Signature=x",
            "url": "https://api.wandb.ai/files/e/p/r/output.log"}
    assert tail_request(node, "https://api.wandb.ai") == (node["directUrl"], {"Range": "bytes=-131072"}, False)
    # without a storage URL: the W&B API's own URL, with the key only on the W&B host
    assert tail_request({"url": node["url"]}, "https://api.wandb.ai", 10) == (node["url"], {"Range": "bytes=-10"}, True)
    assert tail_request({"url": node["url"]}, "https://wandb.example.com")[2] is False


def test_a_tail_starts_at_a_whole_line():
    assert content_start("bytes 900-999/1000") == 900 and content_start(None) is None
    assert tail_text(b"ut line\nline 2\nline 3\n", starts_mid_file=True) == "line 2\nline 3\n"
    assert tail_text(b"line 1\nline 2\n", starts_mid_file=False) == "line 1\nline 2\n"
    # a whole file sent although a Range was asked: its end, from a whole line
    assert tail_text(b"aaaa\nbbbb\ncccc\n", starts_mid_file=False, tail_bytes=8) == "cccc\n"
    assert tail_text(b"\xff\xfeok\n", starts_mid_file=False) == "\ufffd\ufffdok\n"


def test_read_outcome_concludes_what_it_read_and_backs_off_what_was_cut():
    oom = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
    rows = [run_row("read", "failed"), run_row("nolog", "crashed"), run_row("recent", "crashed",
            finished="2026-11-18T11:05:50Z"), run_row("cut", "failed"), run_row("last", "failed")]
    tails = {"read": Tail(text="step 1\n" + oom), "nolog": Tail(), "recent": Tail(),
             "cut": Tail(cut="output.log: HTTP 503 from s"), "last": Tail(cut="output.log: HTTP 503 from s")}
    retry = {"last": (logs.MAX_TRIES - 1, 0.0, "output.log: HTTP 503 from s")}
    facts, report = read_outcome(rows, tails, retry, NOW)
    assert {f["id"]: (f["message"], f["rule"], f["line"]) for f in facts} == {
        "read": ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "memory.cuda_oom", 2),
        "nolog": ("run failed", None, None),  # no console log: W&B's words
        "last": ("run failed", None, None),  # its last try: W&B's words
    }  # `recent` ended 50 s ago: its output.log may still come
    assert report == {"read": ["read", "nolog", "last"], "cut": {"cut": "output.log: HTTP 503 from s"}}
    assert problem(report, [], {}) == "console logs of 1 runs not read: output.log: HTTP 503 from s"
    assert conclude(rows[0], None)["verdict"] == "failed"


def test_the_fakes_ranges_follow_rfc_9110():
    assert byte_range("bytes=-100", 1000) == (900, 999)
    assert byte_range("bytes=-5000", 1000) == (0, 999)
    assert byte_range("bytes=10-19", 1000) == (10, 19)
    assert byte_range("bytes=990-", 1000) == (990, 999)
    assert byte_range("bytes=10-5000", 1000) == (10, 999)
    assert byte_range("bytes=1000-", 1000) is False and byte_range("bytes=-0", 1000) is False
    assert byte_range("bytes=-10", 0) is False
    assert byte_range(None, 10) is None and byte_range("bytes=0-1,5-6", 10) is None  # several: the whole file
    assert like("%.log", "output.log") and like("output._og", "output.log") and not like("%.json", "output.log")
