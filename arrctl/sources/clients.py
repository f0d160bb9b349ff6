"""Google API clients for the source workers: one constructor pattern, pages and region fan-out.

Imported only inside a worker, after the fork (cloud libraries are slow to import and gRPC is
not fork-safe). Every client speaks REST. With ARRCTL_GCP_ENDPOINT set (`ctx.gcp_endpoint`) it
talks to that address with anonymous credentials; otherwise to Google with Application Default
Credentials. docs/architecture.md ("Client libraries") lists the measured behaviour this relies on.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable, Iterable, Iterator, TypeVar

from arrctl.kinds import ErrorKind, Reason
from arrctl.model import TerminalFact
from arrctl.sources import Emitter, FetchContext, SourceError
from arrctl.sources.gcp_errors import describe_error

T = TypeVar("T")
R = TypeVar("R")

MAX_PAGES = 5  # no list walks further than this many pages (the newest items come first)

_credentials_lock = threading.Lock()
_credentials_cache: dict[str, Any] = {}


def credentials(ctx: FetchContext) -> Any:
    """Anonymous credentials for a local endpoint, else Application Default Credentials (cached)."""
    import google.auth
    import google.auth.credentials
    from google.auth import exceptions as auth_exceptions

    if ctx.gcp_endpoint:
        return google.auth.credentials.AnonymousCredentials()
    with _credentials_lock:  # regions build their clients in parallel; resolve ADC once
        if "adc" not in _credentials_cache:
            try:
                creds, _project = google.auth.default(
                    scopes=["https://www.googleapis.com/auth/cloud-platform"])
            except (auth_exceptions.DefaultCredentialsError, OSError) as exc:
                from arrctl.sources.gcp_errors import adc_error

                raise SourceError(adc_error(exc)) from exc
            _credentials_cache["adc"] = creds
        return _credentials_cache["adc"]


def _options(ctx: FetchContext, default_host: str | None = None) -> dict[str, str] | None:
    """client_options: the local endpoint when set, else a regional host when the API needs one."""
    if ctx.gcp_endpoint:
        return {"api_endpoint": ctx.gcp_endpoint}
    return {"api_endpoint": default_host} if default_host else None


def run_executions_client(ctx: FetchContext) -> Any:
    """Cloud Run Admin v2 ExecutionsClient over REST."""
    from google.cloud import run_v2

    return run_v2.ExecutionsClient(transport="rest", credentials=credentials(ctx),
                                   client_options=_options(ctx))


def run_jobs_client(ctx: FetchContext) -> Any:
    """Cloud Run Admin v2 JobsClient over REST (for launch's `jobs/J:run`)."""
    from google.cloud import run_v2

    return run_v2.JobsClient(transport="rest", credentials=credentials(ctx),
                             client_options=_options(ctx))


def vertex_job_client(ctx: FetchContext, region: str) -> Any:
    """Vertex AI v1 JobServiceClient for one region (the real API is served per region)."""
    from google.cloud import aiplatform_v1  # never google.cloud.aiplatform: 1.5 s to import

    return aiplatform_v1.JobServiceClient(
        transport="rest", credentials=credentials(ctx),
        client_options=_options(ctx, f"{region}-aiplatform.googleapis.com"))


def build_client(ctx: FetchContext) -> Any:
    """Cloud Build v1 CloudBuildClient over REST."""
    from google.cloud.devtools import cloudbuild_v1

    return cloudbuild_v1.CloudBuildClient(transport="rest", credentials=credentials(ctx),
                                          client_options=_options(ctx))


def storage_client(ctx: FetchContext) -> Any:
    """A Cloud Storage client (JSON API), for the build logs kept in a bucket (sources/bucketlog.py).

    google-cloud-storage 3.17 starts a background thread on a download that fetches the bucket's
    metadata (`GET /storage/v1/b/BUCKET`, a 10 s timeout, storage.buckets.get: a permission a log
    reader need not have) for its telemetry (google/cloud/storage/_bucket_metadata_cache.py); its
    switch is DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA (_opentelemetry_tracing.py), read at
    each call. A worker makes only the call it counts.
    """
    import os

    import google.cloud.storage as storage

    os.environ.setdefault("DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA", "1")

    return storage.Client(project=ctx.config.project, credentials=credentials(ctx),
                          client_options=_options(ctx))


def logging_connection(ctx: FetchContext, project: str | None) -> Any:
    """The JSON connection of a Cloud Logging client, for `api_request(... timeout=...)`.

    `Client.list_entries` has a fixed 60 s timeout and probes the GCE metadata server while
    building entry objects; the raw connection has neither problem.
    """
    from google.cloud import logging as cloud_logging

    client = cloud_logging.Client(project=project, credentials=credentials(ctx), _use_grpc=False,
                                  client_options=_options(ctx))
    return client._connection


def call_kwargs(ctx: FetchContext) -> dict[str, Any]:
    """The bounds every GAPIC call carries: an explicit socket timeout and no hidden retries."""
    return {"timeout": ctx.call_timeout_s, "retry": None}


def take_pages(pager: Any, on_request: Callable[[], None], enough: Callable[[int], bool],
               field: str, max_pages: int = MAX_PAGES) -> list[Any]:
    """Items of a GAPIC pager, page by page, until `enough(count)`, the last page or `max_pages`.

    The first page is already fetched when the pager is returned; `on_request` is called before
    each further request, so call counts are exact even when a later page fails.
    """
    items: list[Any] = []
    pages = pager.pages
    page = next(pages)
    for number in range(1, max_pages + 1):
        items.extend(getattr(page, field))
        if number == max_pages or enough(len(items)) or not page.next_page_token:
            break
        on_request()
        page = next(pages)
    return items


class LockedEmitter:
    """An Emitter safe to call from several threads (pipe messages must not interleave)."""

    def __init__(self, inner: Emitter) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def plan(self, parts: list[str]) -> None:
        with self._lock:
            self._inner.plan(parts)

    def rows(self, rows: list[Any], part: str | None = None) -> None:
        with self._lock:
            self._inner.rows(rows, part=part)

    def facts(self, facts: list[TerminalFact]) -> None:
        with self._lock:
            self._inner.facts(facts)

    def results(self, results: list[dict[str, Any]]) -> None:
        with self._lock:
            self._inner.results(results)

    def call(self, api: str, n: int = 1) -> None:
        with self._lock:
            self._inner.call(api, n)

    def log_reads(self, report: dict[str, Any]) -> None:
        with self._lock:
            self._inner.log_reads(report)


def fan_out(parts: Iterable[T], work: Callable[[T], R], budget_s: float,
            ) -> Iterator[tuple[T, R | None, Reason | None]]:
    """Run `work(part)` for every part on daemon threads; yield (part, result, error) as each ends.

    Daemon threads, because a thread blocked in a socket read must never keep a terminated
    worker alive. Parts with no answer within `budget_s` are yielded last with an error; their
    threads are abandoned (the process exits without them).
    """
    parts = list(parts)
    answers: queue.Queue[tuple[int, R | None, Reason | None]] = queue.Queue()

    def run(n: int) -> None:
        try:
            answers.put((n, work(parts[n]), None))
        except SourceError as exc:
            answers.put((n, None, Reason(str(exc), exc.kind)))
        except BaseException as exc:  # noqa: BLE001 — every failure becomes a one-line reason
            answers.put((n, None, describe_error(exc)))

    for n, part in enumerate(parts):
        threading.Thread(target=run, args=(n,), name=f"fetch-{part}", daemon=True).start()
    pending = set(range(len(parts)))
    end = time.monotonic() + budget_s
    while pending:
        remaining = end - time.monotonic()
        if remaining <= 0:
            break
        try:
            n, result, error = answers.get(timeout=remaining)
        except queue.Empty:
            break
        pending.discard(n)
        yield parts[n], result, error
    for n in sorted(pending):
        yield parts[n], None, Reason(f"no answer within {budget_s:g}s", ErrorKind.TIMEOUT)
