"""The contract between the sandbox's HTTP core and the fake services it hosts."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol


@dataclass
class Request:
    """One HTTP request as the core parsed it."""

    method: str
    path: str  # URL-decoded path without the query string, e.g. /v2/projects/p/locations/r/jobs/j/executions
    query: dict[str, list[str]]  # parse_qs of the query string ($alt, pageSize, pageToken, filter, ...)
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    pages: int | None = None  # set by the `pages:N` fault: split list results over N pages

    def json(self) -> Any:
        """The body parsed as JSON ({} when empty)."""
        import json

        return json.loads(self.body or b"{}")

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    """What a service answers; the core serialises it and applies faults."""

    status: int = 200
    body: Any = None  # JSON-able object, or bytes sent as they are
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class Clock(Protocol):
    """Scenario time: seconds since the sandbox started, scaled by the scenario's speed."""

    def now(self) -> float:
        """Wall-clock epoch seconds now."""

    def t(self) -> float:
        """Scenario seconds since start."""


# Each service module (arrctl/sandbox/<name>.py) exposes
#     def create(scenario_dir: pathlib.Path, clock: Clock) -> Service
# and reads its own fixture files from arrctl/sandbox/scenarios/<scenario>/.


class Service(Protocol):
    """One fake API. `name` is the fault SERVICE word: run, vertex, build, logging, wandb or storage."""

    name: str

    def handle(self, request: Request) -> Response | None:
        """Answer the request, or None when it is not this service's route."""


# --- Helpers shared by the fake services (additions; the names above are the contract) ---

GOOGLE_STATUS: dict[int, str] = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED",
    500: "INTERNAL", 501: "NOT_IMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def google_error(code: int, message: str) -> Response:
    """A Google API error body: {"error": {"code", "message", "status"}}."""
    status = GOOGLE_STATUS.get(code, "UNKNOWN" if code >= 500 else "FAILED_PRECONDITION")
    return Response(code, {"error": {"code": code, "message": message, "status": status}})


def epoch_at(clock: Clock, offset: float) -> float:
    """Wall-clock epoch seconds of a scenario offset (offsets are scaled by the clock's speed)."""
    speed = float(getattr(clock, "speed", 1.0) or 1.0)
    return clock.now() - (clock.t() - offset) / speed


def rfc3339(epoch_s: float) -> str:
    """RFC 3339 UTC with microseconds and a trailing Z, as the Google APIs write timestamps."""
    moment = _dt.datetime.fromtimestamp(round(epoch_s, 6), _dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_RFC3339_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?([Zz]|[+-]\d{2}:\d{2})?")


def parse_rfc3339(text: str | None) -> _dt.datetime | None:
    """An RFC 3339 timestamp (RFC 3339 §5.6: any fraction of a second, Z or an offset; none is UTC)
    as an aware datetime; None when it is not one. The sandbox's own reading, on purpose: a fake
    that shared arrctl's parser would mirror its bugs."""
    found = _RFC3339_TIME.fullmatch((text or "").strip())
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    zone = _dt.timezone.utc
    if offset and offset not in ("Z", "z"):
        sign = -1 if offset[0] == "-" else 1
        zone = _dt.timezone(sign * _dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    try:
        return _dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                            min(int(second or 0), 59), int((fraction or "0")[:6].ljust(6, "0")), tzinfo=zone)
    except ValueError:
        return None


class PageTokenError(ValueError):
    """A page token this sandbox did not issue."""


def paginate(items: list[Any], page_size: int | None, page_token: str | None,
             pages: int | None = None, default_size: int = 50,
             max_size: int = 1000) -> tuple[list[Any], str | None]:
    """One page of items and the next page token (None on the last page).

    `pages` (the `pages:N` fault) caps the page size so that the whole list spans N pages.
    """
    import base64
    import math

    size = page_size if page_size and page_size > 0 else default_size
    size = min(size, max_size)
    if pages and pages > 0 and items:
        size = min(size, max(1, math.ceil(len(items) / pages)))
    start = 0
    if page_token:
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode().removeprefix("o:"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise PageTokenError(f"Invalid page token: {page_token!r}") from exc
        if start < 0:
            raise PageTokenError(f"Invalid page token: {page_token!r}")
    end = start + size
    token = base64.urlsafe_b64encode(f"o:{end}".encode()).decode() if end < len(items) else None
    return items[start:end], token


def int_or_none(text: str | None) -> int | None:
    """An integer parameter, or None when absent or not a number."""
    try:
        return int(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | Literal[False]:
    """(first, last) of a single-range `Range` header; None to send the whole file; False: unsatisfiable."""
    if not header:
        return None
    found = _RANGE.fullmatch(header.strip())
    if found is None:  # several ranges, another unit, nonsense: a server may ignore it (§14.2)
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    start = int(first)
    if start >= size:
        return False
    return start, min(size - 1, int(last)) if last else size - 1


def ranged(data: bytes, header: str | None, content_type: str, unsatisfiable: Response) -> Response:
    """The answer of a storage GET with an optional `Range` header (RFC 9110 §14.1.2): the whole
    body (200), the range asked for (206 with `Content-Range`), or `unsatisfiable` (416 with
    `Content-Range: bytes */SIZE`, §15.5.17)."""
    wanted = byte_range(header, len(data))
    if wanted is False:
        return Response(416, unsatisfiable.body, unsatisfiable.content_type,
                        {**unsatisfiable.headers, "Content-Range": f"bytes */{len(data)}"})
    if wanted is None:
        return Response(200, data, content_type, {"Accept-Ranges": "bytes"})
    first, last = wanted
    return Response(206, data[first:last + 1], content_type,
                    {"Accept-Ranges": "bytes", "Content-Range": f"bytes {first}-{last}/{len(data)}"})


def list_response(key: str, page_of: Callable[[], tuple[list[Any], str | None]],
                  render: Callable[[Any], Any] | None = None) -> Response:
    """A List method's answer: the page's items under `key` and `nextPageToken`, each left out when
    empty (proto3 JSON omits empty fields); a page token this sandbox did not issue is a 400."""
    try:
        page, token = page_of()
    except PageTokenError as exc:
        return google_error(400, str(exc))
    body: dict[str, Any] = {}
    if page:
        body[key] = [render(item) for item in page] if render is not None else page
    if token:
        body["nextPageToken"] = token
    return Response(200, body)
