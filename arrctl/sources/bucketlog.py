"""A Cloud Build build's log kept in a Cloud Storage bucket: where it is, and its tail, read once.

A build whose `options.logging` is GCS_ONLY writes its log to its `logsBucket` only ("Build logs
are stored in Cloud Storage", cloudbuild_v1 types `BuildOptions.LoggingMode`), so Cloud Logging
has nothing of it. The object is `log-<build id>.txt` under the bucket's path (`gs://BUCKET/DIR`
→ `DIR/log-ID.txt`), as gcloud finds it (google-cloud-sdk lib/googlecloudsdk/api_lib/cloudbuild/
logs.py `GCSLogTailer.FromBuild`). Only its end names the error, so the last TAIL_BYTES are
asked for, and one byte more, so that a log of exactly TAIL_BYTES is known to be whole and keeps
its first line (`Blob.download_as_bytes(start=-N)` sends `Range: bytes=-N`,
google/cloud/storage/_media/_download.py `add_bytes_range`), without the library's own retries
(the caller's backoff decides) and within the worker's deadline.

The lines read become LogEntry-shaped dicts (`textPayload`, `resource.labels.build_id`), the
shape a Cloud Logging read gives, so one judge explains a build whichever way its log was read.
"""

from __future__ import annotations

from typing import Any

from arrctl.sources import Emitter, FetchContext, logs
from arrctl.sources.wandb_logs import TAIL_BYTES, tail_text

BUCKET_ONLY = "GCS_ONLY"  # the options.logging mode whose log is in the bucket alone


def object_of(logs_bucket: str, build_id: str) -> tuple[str, str] | None:
    """(bucket, object name) of a build's log from its `logsBucket` (None when it has none)."""
    path = logs_bucket.removeprefix("gs://")
    bucket, _, folder = path.partition("/")
    if not bucket:
        return None
    return bucket, f"{folder.rstrip('/') + '/' if folder else ''}log-{build_id}.txt"


def uri(logs_bucket: str, build_id: str) -> str | None:
    """`gs://BUCKET/OBJECT` of a build's log, None when the build names no bucket."""
    found = object_of(logs_bucket, build_id)
    return f"gs://{found[0]}/{found[1]}" if found else None


def entries(build_id: str, text: str, key: str | None = None) -> list[dict[str, Any]]:
    """The lines of a bucket log as the LogEntries a Cloud Logging read would give (pure); with
    `key`, each has the insertId `KEY#N` (its line number in the text: a log within TAIL_BYTES is
    read whole each time, so `arrctl logs` prints each of its lines once, repeated lines too)."""
    return [{"textPayload": line, "resource": {"type": "build", "labels": {"build_id": build_id}},
             **({"insertId": f"{key}#{n}"} if key else {})}
            for n, line in enumerate(text.splitlines())]


def read_tail(client: Any, emit: Emitter, gs_uri: str, timeout_s: float) -> tuple[str | None, str | None]:
    """(the tail's text, None) of the object at `gs_uri`, ("", None) when it is empty, (None, None)
    when it does not exist, or (None, one-line reason) when the read failed."""
    from google.api_core import exceptions as api_exceptions

    from arrctl.sources.gcp_errors import describe_error

    bucket, _, name = gs_uri.removeprefix("gs://").partition("/")
    emit.call("storage")
    try:
        blob = client.bucket(bucket).blob(name)
        data = blob.download_as_bytes(start=-(TAIL_BYTES + 1), timeout=timeout_s, retry=None, checksum=None)
    except api_exceptions.NotFound:
        return None, None
    except api_exceptions.RequestRangeNotSatisfiable:  # an empty object has no last bytes
        return "", None
    except Exception as exc:  # noqa: BLE001 — every failure is a cut read with a one-line reason
        return None, f"build log {gs_uri}: {describe_error(exc, timeout_s)}"
    return tail_text(data, starts_mid_file=False), None  # tail_text cuts what is over TAIL_BYTES


def read_all(ctx: FetchContext, emit: Emitter, wanted: list[tuple[str, str]], deadline_at: float,
             clock: Any, keyed: bool = False) -> logs.LogRead:
    """One LogRead of the bucket logs of (build id, gs URI) pairs, one GET each, within the deadline.

    A build whose object does not exist adds no entries (its log is complete and says nothing); a
    failed GET or the deadline cuts the read, and what it reached is kept.
    """
    from arrctl.sources import clients

    read = logs.LogRead()
    unreached: set[str] = set()
    client = None
    for build_id, gs_uri in wanted:
        remaining = deadline_at - clock()
        if remaining < logs.MIN_CALL_S:
            if read.cut is None:
                read.cut, read.reason = logs.Cut.DEADLINE, "build logs in Cloud Storage not read within the deadline"
            unreached.add(build_id)
            continue
        read.calls += 1
        client = client or clients.storage_client(ctx)  # one client for all of this read
        text, problem = read_tail(client, emit, gs_uri, min(ctx.call_timeout_s, max(0.5, remaining)))
        if problem is not None:
            if read.cut is None:
                read.cut, read.reason = logs.Cut.ERROR, problem
            unreached.add(build_id)
            continue
        read.entries.extend(entries(build_id, text or "", gs_uri if keyed else None))
    if read.cut is not None:
        read.unreached = frozenset(unreached)
    return read
