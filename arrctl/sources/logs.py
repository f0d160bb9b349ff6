"""Cloud Logging reads: the one `entries:list` loop of arrctl, bounded, paged and rate-aware.

Every command that reads logs (the runner source, `launch`, `explain`) goes through
`read_entries`. What it relies on about the real service (each fact modelled by the fake in
arrctl/sandbox/cloudlogging.py, with its reference):
- The API has no default time window: a filter without `timestamp>=` searches the whole
  retention of the bucket. The 24 h default belongs to the Python client (`Client.list_entries`
  adds it in `google.cloud.logging_v2._helpers._add_defaults_to_filter`) and to gcloud; arrctl
  calls the connection directly, so every filter it sends is bounded here (`bounded`).
- An empty page that still has a `nextPageToken` means the search has not finished, not "no
  logs" (ListLogEntriesResponse.next_page_token): the token is followed within the deadline.
- Reads are limited per project (`ReadRequestsPerMinutePerProject`, about 60 a minute, shared
  with everyone in the project): a 429 is not an error to repeat at once but a reason to hold
  every read of the project for a while (`hold_s`), across processes (the state store).
A read cut short (page cap, deadline, 429, any error) is retried later with backoff
(`retry_delay_s`); after MAX_TRIES the caller concludes with what the platform itself said.
"""

from __future__ import annotations

import enum
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from arrctl.sources import Emitter, FetchContext

PAGE_SIZE = 1000  # the API's maximum
MAX_PAGES = 5  # per read: a log longer than 5,000 entries is read in part
MIN_CALL_S = 1.0  # a further page is asked for only with this much of the deadline left
MAX_TRIES = 5  # reads cut short before an execution is concluded without (all of) its logs
RETRY_BASE_S, RETRY_MAX_S = 30.0, 600.0
HOLD_BASE_S, HOLD_MAX_S = 60.0, 600.0  # after a 429: the quota is per minute
_TIMESTAMP_LOWER_BOUND = re.compile(r"\btimestamp\s*>=?\s*\"")


class Cut(enum.Enum):
    """Why a read ended before the search did."""

    PAGES = "pages"  # the page cap
    DEADLINE = "deadline"  # too little time left for another page
    RATE_LIMITED = "rate_limited"  # 429: the project's read quota is used up
    ERROR = "error"  # any other failure of a call


@dataclass
class LogRead:
    """What one read found, and whether the search finished."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    cut: Cut | None = None
    reason: str | None = None  # one line, for a cut read
    calls: int = 0
    error: BaseException | None = field(default=None, repr=False)  # what the failed call raised (its code, details)
    unreached: frozenset[str] | None = None
    """The items a cut read may have missed entries of, when it knows them (None: all of them)."""

    @property
    def complete(self) -> bool:
        """Whether the search reached its end (no token left)."""
        return self.cut is None


def bounded(filter_text: str, since: str) -> str:
    """The filter with its lower time bound (`timestamp>="since"`): the API has no default one."""
    if not since:
        raise ValueError("a Cloud Logging read needs a lower time bound")
    return f'{filter_text} AND timestamp>="{since}"'


def window(filter_text: str, since: str, until: str | None = None) -> str:
    """The filter bounded below by `since` and, when known, above by `until` (`timestamp<="until"`)."""
    text = bounded(filter_text, since)
    return f'{text} AND timestamp<="{until}"' if until else text


def filter_string(value: str) -> str:
    """A value as a quoted string of the Logging query language: nothing in it can end the string.

    The language follows Google's filtering grammar (https://google.aip.dev/160, which
    https://cloud.google.com/logging/docs/view/logging-query-language names as its formal
    specification): a string is double-quoted and a backslash escapes the next character, so
    backslashes and double quotes are escaped. Line breaks have
    no place in a name; they are escaped too rather than passed on raw.
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def any_of(field: str, values: list[str]) -> str:
    """`(field="a" OR field="b")`: one clause matching any of the values, each quoted."""
    return "(" + " OR ".join(f"{field}={filter_string(v)}" for v in values) + ")"


def is_bounded(filter_text: str) -> bool:
    """Whether a filter carries a lower time bound."""
    return _TIMESTAMP_LOWER_BOUND.search(filter_text) is not None


def retry_delay_s(attempts: int) -> float:
    """Seconds before the next read of logs whose read was cut short `attempts` times."""
    return min(RETRY_MAX_S, RETRY_BASE_S * 2 ** max(0, attempts - 1))


def hold_s(rate_limited_in_a_row: int) -> float:
    """Seconds every read of the project waits after its `n`-th 429 in a row."""
    return min(HOLD_MAX_S, HOLD_BASE_S * 2 ** max(0, rate_limited_in_a_row - 1))


def rate_limit_reason(exc: BaseException) -> str:
    """`429 rate limited: ReadRequestsPerMinutePerProject (60) of logging.googleapis.com` from the error's details."""
    metadata = getattr(exc, "metadata", None) or {}
    limit = metadata.get("quota_limit") or "read quota"
    value = metadata.get("quota_limit_value")
    service = metadata.get("service")
    text = f"429 rate limited: {limit}" + (f" ({value})" if value else "")
    return text + (f" of {service}" if service else "")


def is_rate_limited(exc: BaseException) -> bool:
    """A 429 (api_core's TooManyRequests; ResourceExhausted is its subclass)."""
    from google.api_core import exceptions as api_exceptions

    return isinstance(exc, api_exceptions.TooManyRequests)


def read_entries(ctx: FetchContext, emit: Emitter, filter_text: str, *, deadline_at: float,
                 max_pages: int = MAX_PAGES, page_size: int = PAGE_SIZE,
                 order: str = "timestamp desc",
                 clock: Callable[[], float] = time.monotonic) -> LogRead:
    """Entries of one bounded filter, following tokens (empty pages too) within the deadline.

    Never raises for a failed call: the read comes back cut, with the reason in one line.
    """
    from arrctl.sources import clients
    from arrctl.sources.gcp_errors import describe_error

    if not is_bounded(filter_text):
        raise ValueError("a Cloud Logging filter needs timestamp>= (the API has no default window)")
    project = ctx.config.project
    read = LogRead()
    body: dict[str, Any] = {"resourceNames": [f"projects/{project}"], "filter": filter_text,
                            "orderBy": order, "pageSize": page_size}
    try:
        connection = clients.logging_connection(ctx, project)
        for page in range(max_pages):
            remaining = deadline_at - clock()
            if page and remaining < MIN_CALL_S:  # keep what we have rather than be killed mid-read
                read.cut, read.reason = Cut.DEADLINE, f"not finished within the deadline ({page} pages)"
                return read
            emit.call("logging")
            read.calls += 1
            answer = connection.api_request(method="POST", path="/entries:list", data=body,
                                            timeout=min(ctx.call_timeout_s, max(0.5, remaining)))
            read.entries.extend(answer.get("entries") or [])
            token = answer.get("nextPageToken")
            if not token:
                return read
            body = {**body, "pageToken": token}
    except Exception as exc:  # noqa: BLE001 — every failure is a cut read with a one-line reason
        read.error = exc
        if is_rate_limited(exc):
            read.cut, read.reason = Cut.RATE_LIMITED, rate_limit_reason(exc)
        else:
            read.cut, read.reason = Cut.ERROR, describe_error(exc, ctx.call_timeout_s)
        return read
    read.cut, read.reason = Cut.PAGES, f"not finished after {max_pages} pages"
    return read
