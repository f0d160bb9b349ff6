"""LogEntries as Cloud Logging holds them for Vertex AI custom jobs (`ml_job`) and Cloud Build (`build`).

What each shape follows (the fields arrctl and gcloud read; the rest of a real entry is left out):
- `ml_job`: `resource.labels` `job_id` (the numeric id), `project_id`, `task_name` (the replica,
  `workerpool0-0`), as gcloud reads them (google-cloud-sdk
  lib/googlecloudsdk/command_lib/ml_engine/log_utils.py `_GetLabelAttributes`, `_EntryToDict`:
  task_name from resource.labels, the text from `jsonPayload.message`, else `textPayload`). A
  replica's lines come as `jsonPayload` `{"attrs": {"tag": "workerpool0-0"}, "levelname": "ERROR",
  "message": "..."}` (an entry quoted in viamrobotics/api#534; "Worker logs are in
  jsonPayload.message (not textPayload). The levelname field contains INFO, ERROR, WARNING", notes
  a public skill of Vertex pipelines debugging). What a replica writes to stderr is ERROR, even a
  progress bar; stdout INFO (GoogleCloudPlatform/vertex-ai-samples#242: `ERROR ... workerpool0-0
  31%|███ | 5974/19120` beside `INFO ... workerpool0-0 {'loss': 5.3862, ...}`). The log name is
  not read by arrctl nor found printed in public material; it is modelled as the replica's.
- `build`: `logName` `projects/P/logs/cloudbuild`, `resource.labels.build_id` (and `project_id`,
  `build_trigger_id`), one `textPayload` per line (gcloud's GCLLogTailer in
  lib/googlecloudsdk/api_lib/cloudbuild/logs.py filters on exactly these and prints textPayload;
  firebase/firebase-tools#3125 quotes such an entry: `{"textPayload": "ERROR: build step 5 ...
  failed: step exited with non-zero status: 246", "insertId": ...}`); no severity is modelled.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from arrctl.sandbox.base import epoch_at, rfc3339
from arrctl.sandbox.scenario import Build, CustomJob, LogSpec

ML_JOB = "ml_job"
BUILD = "build"
INGEST_DELAY_S = 0.4  # receiveTimestamp - timestamp
_ERROR_LINE = re.compile(
    r"^(Traceback |  File |\s+raise |wandb: ERROR|🚨|❌|ERROR[: ]|E\d{4} |"
    r"[\w.]*(Error|Exception|Exceeded|Denied|Unavailable|NotFound|Exhausted)\b)")
_WARNING_LINE = re.compile(r"^(wandb: WARNING|WARNING[: ]|\S*Warning: |Retrying )")
_STDERR_LINE = re.compile(r"^(wandb: |Retrying |\S*Warning: |.*\d+%\|)")


def classify_line(text: str, index: int) -> tuple[str, str | None, bool]:
    """(stream, severity or None, as jsonPayload) of a Cloud Run log line, deterministic.

    Cloud Run marks stderr ERROR whatever it says (so severity alone proves nothing), leaves
    some stdout entries without severity, and a few lines arrive as jsonPayload.
    """
    stripped = text.strip()
    if _ERROR_LINE.match(stripped) or _STDERR_LINE.match(stripped):
        return "stderr", "ERROR" if not _WARNING_LINE.match(stripped) else "WARNING", False
    if index % 7 == 3:
        return "stdout", None, False
    if index % 9 == 4:
        return "stdout", "INFO", True
    return "stdout", "DEFAULT", False


def written_lines(log: LogSpec | None, t: float) -> list[tuple[float, int, str]]:
    """The lines of a log written by scenario time t."""
    return [(offset, index, text) for offset, index, text in (log.timed() if log else []) if offset <= t]


def _base(clock: Any, key: str, offset: float) -> dict[str, Any]:
    moment = epoch_at(clock, offset)
    return {"insertId": hashlib.sha1(key.encode()).hexdigest()[:16], "timestamp": rfc3339(moment),
            "receiveTimestamp": rfc3339(moment + INGEST_DELAY_S)}


def ml_job_entries(clock: Any, project: str, job: CustomJob, t: float) -> list[dict[str, Any]]:
    """The entries every replica of a custom job has written by scenario time t."""
    out = []
    for replica, log in job.logs.items():
        for offset, index, text in written_lines(log, t):
            stream, _severity, _json = classify_line(text, index)
            level = "ERROR" if stream == "stderr" else "INFO"
            out.append({
                **_base(clock, f"{job.id}/{replica}/{index}", offset),
                "jsonPayload": {"attrs": {"tag": replica}, "levelname": level, "message": text},
                "resource": {"type": ML_JOB, "labels": {
                    "job_id": job.id, "project_id": project, "task_name": replica}},
                "severity": level,
                "logName": f"projects/{project}/logs/{replica}",
            })
    return out


def build_entries(clock: Any, project: str, build: Build, t: float) -> list[dict[str, Any]]:
    """The entries of a build's log written by scenario time t."""
    trigger = str(build.fixture.get("buildTriggerId", ""))
    return [{
        **_base(clock, f"{build.id}/{index}", offset),
        "textPayload": text,
        "resource": {"type": BUILD, "labels": {
            "build_id": build.id, "build_trigger_id": trigger, "project_id": project}},
        "logName": f"projects/{project}/logs/cloudbuild",
    } for offset, index, text in written_lines(build.log, t)]
