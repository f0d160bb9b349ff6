"""Prefixes and structured lines the normaliser reads (extract/ingest.py): each format as the tool
that prints it writes it, down to the message the rules see and the level it names."""

from __future__ import annotations

import pytest

import json

from arrctl.extract.ingest import entry_text, lines_of_input, normalise, split_text

pytestmark = pytest.mark.timeout(10)

FORMATS = [
    # BuildKit's error summary: the step's elapsed seconds, of any width
    ("13181.5 pip._vendor.resolvelib.resolvers.ResolutionTooDeep: 2000000",
     "pip._vendor.resolvelib.resolvers.ResolutionTooDeep: 2000000", None),
    ("0.238 ERROR: No matching distribution found for x", "ERROR: No matching distribution found for x", None),
    # c10's newer logger: month without its leading zero
    ("[W503 01:52:07.597517393 socket.cpp:204] [c10d] The hostname of the client socket cannot be retrieved.",
     "[c10d] The hostname of the client socket cannot be retrieved.", "WARNING"),
    # vLLM behind its worker's prefix
    ("(VllmWorkerProcess pid=6499) ERROR 07-24 14:07:40 multiproc_worker_utils.py:226] ValueError: bad",
     "ValueError: bad", "ERROR"),
    ("ERROR 04-17 15:10:09 [engine.py:448] ValueError: bad", "ValueError: bad", "ERROR"),  # newer vLLM
    # a terminal's ^C echo before Prefect's line
    ("^C21:07:11.196 | ERROR   | Flow run 'x' - Crash detected!", "Flow run 'x' - Crash detected!", "ERROR"),
    # a logging format gluing the level's letter to the time (google-cloud-pubsub's user, issue 640)
    ("E2022-04-24 18:17:53,278] Thread-ConsumeBidirectionalStream caught unexpected exception x",
     "Thread-ConsumeBidirectionalStream caught unexpected exception x", "ERROR"),
    ("I2022-04-24 18:17:53,277] Observed non-terminating stream error", "Observed non-terminating stream error", "INFO"),
    # AWS CodeBuild's agent
    ("[Container] 2024/10/11 07:43:01.067378 Phase complete: BUILD State: FAILED",
     "Phase complete: BUILD State: FAILED", None),
    ("npm WARN deprecated inflight@1.0.6: This module is not supported", "deprecated inflight@1.0.6: This module is not supported",
     "WARNING"),
    ("npm ERR! code E404", "npm ERR! code E404", None),  # its error lines keep their words
    # Rust's env_logger, Ruby's Logger, the logging cookbook's format
    ("[2024-01-01T00:00:00Z ERROR mycrate::module] Something broke", "Something broke", "ERROR"),
    ("E, [2024-01-01T00:00:00.000000 #1234] ERROR -- : Something broke", "Something broke", "ERROR"),
    ("2024-01-01 00:00:00,123 - trainer - ERROR - Something broke", "Something broke", "ERROR"),
    # logfmt: logrus' text formatter (its error field joins the message), go-kit's log
    ('time="2024-01-01T00:00:00Z" level=error msg="failed to pull image" error="rpc error: code = NotFound"',
     "failed to pull image: rpc error: code = NotFound", "ERROR"),
    ('level=warn ts=2024-01-01T00:00:00.000Z caller=main.go:12 msg="disk almost full"', "disk almost full", "WARNING"),
    ("level=info count=3", "level=info count=3", None),  # no message: the line as it is
]


@pytest.mark.parametrize(("raw", "text", "level"), FORMATS, ids=[f[0][:40] for f in FORMATS])
def test_a_format_is_read_down_to_its_message_and_level(raw: str, text: str, level: str | None) -> None:
    line = normalise(raw)
    assert (line.text, line.level) == (text, level)


# --- what `explain --from-file` reads -------------------------------------------------------------

def _entry(text: str, ts: str, severity: str = "DEFAULT") -> dict[str, object]:
    return {"textPayload": text, "severity": severity, "timestamp": ts, "insertId": ts[-6:],
            "resource": {"type": "cloud_run_job", "labels": {"job_name": "j"}}}


NEWEST_FIRST = [_entry("ValueError: bad lr", "2026-12-03T10:00:02.000002Z", "ERROR"),
                _entry("Traceback (most recent call last):", "2026-12-03T10:00:02.000001Z", "ERROR"),
                _entry("epoch 1 loss=0.3", "2026-12-03T10:00:01.000000Z", "INFO")]


@pytest.mark.parametrize("carrier", ["array", "entries_list", "ndjson"])
def test_exported_log_entries_are_read_as_their_lines_oldest_first(carrier: str) -> None:
    text = {"array": json.dumps(NEWEST_FIRST, indent=2),  # gcloud logging read --format=json
            "entries_list": json.dumps({"entries": NEWEST_FIRST, "nextPageToken": "t"}),
            "ndjson": "\n".join(json.dumps(e) for e in NEWEST_FIRST) + "\n"}[carrier]
    lines = lines_of_input(text)
    assert list(lines) == ["epoch 1 loss=0.3", "Traceback (most recent call last):", "ValueError: bad lr"]
    assert lines.severities == ["INFO", "ERROR", "ERROR"]


def test_one_pasted_entry_with_a_json_payload_gives_its_message() -> None:
    entry = {"jsonPayload": {"message": "Memory limit of 512 MiB exceeded with 530 MiB used."}, "severity": "ERROR"}
    assert list(lines_of_input(json.dumps(entry, indent=2))) == ["Memory limit of 512 MiB exceeded with 530 MiB used."]


@pytest.mark.parametrize("text", [
    '{\n  "error": {\n    "code": 403,\n    "message": "denied"\n  }\n}\n',  # an error body, not an entry
    '[1, 2, 3]\n', '{"textPayload": "a"}\nnot json\n', "plain line\n", "", "[\n",
])
def test_anything_else_is_read_as_text(text: str) -> None:
    assert lines_of_input(text) == split_text(text)


def test_an_entry_whose_payload_has_only_fields_is_read_as_its_json():
    """Cloud Tasks logs an attempt as fields, no message (real: fresh_s/cloud_tasks_http_target_*)."""
    entry = {"severity": "ERROR", "jsonPayload": {"attemptResponseLog": {"status": "DEADLINE_EXCEEDED",
                                                                         "attemptDuration": "600.001266s"}}}
    assert entry_text(entry) == '{"attemptResponseLog": {"status": "DEADLINE_EXCEEDED", "attemptDuration": "600.001266s"}}'
    assert entry_text({"jsonPayload": {}}) == ""


def test_unflatten_mends_only_the_lines_that_need_it_and_keeps_every_other_in_place():
    """Only the lines holding `\\n`, `File "` or an opened quote are looked at (extract/ingest.py's
    one search of the joined text): the rest come through in order, repeated ones too."""
    from arrctl.extract.ingest import unflatten
    flat = 'Traceback (most recent call last):\\n  File "/app/x.py", line 1, in f\\nValueError: bad'
    lines = ["step 1", "step 1", "    message: 'failed to create task: OCI", "      runtime create failed'",
             "step 2", flat, "key: 'closed'", "File \"plain\" words", "step 3"]
    assert unflatten(lines) == [
        "step 1", "step 1", "    message: 'failed to create task: OCI runtime create failed'", "step 2",
        "Traceback (most recent call last):", '  File "/app/x.py", line 1, in f', "ValueError: bad",
        "key: 'closed'", "File \"plain\" words", "step 3"]
    assert unflatten([]) == [] and unflatten(["a"]) == ["a"]
