"""Google Cloud errors in one line, whatever printed them.

api_core exception (`PermissionDenied: 403 Permission 'x' denied ...`, without its module
path), gRPC status block (`StatusCode.PERMISSION_DENIED: <details>`), a status as gcloud or a
client printed it (`PERMISSION_DENIED: ...`): with the status named as printed, the words people
search for. A JSON error body or googleapiclient HttpError, spread over lines, gets api_core's form.
"""

from __future__ import annotations

import json
import re
from typing import Protocol


class Bodies(Protocol):
    """What the record finders need of a log: its length and each line's normalised text."""

    def __len__(self) -> int: ...

    def body(self, i: int) -> str: ...


# gRPC status → (api_core exception class, HTTP code), as google.api_core.exceptions maps them.
GRPC_STATUS: dict[str, tuple[str, int]] = {
    "INVALID_ARGUMENT": ("InvalidArgument", 400),
    "FAILED_PRECONDITION": ("FailedPrecondition", 400),
    "OUT_OF_RANGE": ("OutOfRange", 400),
    "UNAUTHENTICATED": ("Unauthenticated", 401),
    "PERMISSION_DENIED": ("PermissionDenied", 403),
    "NOT_FOUND": ("NotFound", 404),
    "ALREADY_EXISTS": ("AlreadyExists", 409),
    "ABORTED": ("Aborted", 409),
    "RESOURCE_EXHAUSTED": ("ResourceExhausted", 429),
    "CANCELLED": ("Cancelled", 499),
    "INTERNAL": ("InternalServerError", 500),
    "UNKNOWN": ("Unknown", 500),
    "DATA_LOSS": ("DataLoss", 500),
    "UNIMPLEMENTED": ("MethodNotImplemented", 501),
    "UNAVAILABLE": ("ServiceUnavailable", 503),
    "DEADLINE_EXCEEDED": ("DeadlineExceeded", 504),
}
_API_CORE_CLASSES = (
    "InvalidArgument|FailedPrecondition|OutOfRange|BadRequest|Unauthenticated|Unauthorized|"
    "PermissionDenied|Forbidden|NotFound|AlreadyExists|Conflict|Aborted|ResourceExhausted|"
    "TooManyRequests|InternalServerError|Unknown|DataLoss|MethodNotImplemented|BadGateway|"
    "ServiceUnavailable|DeadlineExceeded|GatewayTimeout"
)
_STATUS_NAMES = "|".join(GRPC_STATUS)
_VERTEX_CREATE = r"\bFailed to create (?:Vertex|custom) job: "

# GCP error records, the most exact form first.
_CLASS_FORM = re.compile(
    r"\b(?:[A-Za-z_]\w*\.)*(?P<cls>" + _API_CORE_CLASSES + r"): (?P<code>\d{3})\b ?(?P<msg>.*)")
_RETRY_FORM = re.compile(r"\b(?P<msg>RetryError: .+)")
_GRPC_STATUS = re.compile(r"\bstatus = StatusCode\.(?P<status>[A-Z_]+)\b")
# gRPC does not escape quotes inside details, and a details string may go on over lines
# (TensorFlow Serving's `details = "indices[...] is not in [0, N)` then `[[{{node ...}}]]"`)
_GRPC_DETAILS = re.compile(r"\bdetails = \"(?P<msg>.*?)\"?\s*$")
_STATUS_FORM = re.compile(r"(?:^|\) |: )(?P<status>" + _STATUS_NAMES + r"): (?P<msg>.+)")
_JSON_HINT = re.compile(r"[\"'](?:status|message|reason)[\"']\s*:")
_JSON_START = re.compile(r"[\"']error[\"']\s*:\s*\{")
_JSON_STATUS = re.compile(r"[\"']status[\"']\s*:\s*[\"'](?P<status>" + _STATUS_NAMES + r")[\"']")
_JSON_CODE = re.compile(r"[\"']code[\"']\s*:\s*(?P<code>\d{3})\b")
_JSON_MESSAGE = re.compile(
    r"[\"']message[\"']\s*:\s*(?:\"(?P<dq>(?:[^\"\\]|\\.)*)\"|'(?P<sq>(?:[^'\\]|\\.)*)')")
_HTTP_ERROR = re.compile(
    r"<HttpError (?P<code>\d{3}) when requesting (?P<url>\S+) returned \"(?P<msg>[^\"]*)\"")
_VERTEX_FORM = re.compile(r"(?P<msg>" + _VERTEX_CREATE + r"\d{3}\b.*)")
# api_core appends the error details' protobuf text ("[reason: ..."), which says nothing more.
_DETAILS_TAIL = re.compile(r"\s*\[(?:reason|type_url|field_violations|links|@type|violations)\b.*$")


def record(log: Bodies, i: int) -> str | None:
    """The one-line record of a GCP error on or around line i (module docstring), if any."""
    body = log.body(i)
    found = _CLASS_FORM.search(body)
    if found:
        return f"{found.group('cls')}: {found.group('code')} {found.group('msg')}".rstrip()
    found = _RETRY_FORM.search(body)
    if found:
        return found.group("msg")
    if "StatusCode." in body or 'details = "' in body:
        record = grpc_record(log, i)
        if record:
            return record
    found = _STATUS_FORM.search(body)
    if found:  # as printed (`RESOURCE_EXHAUSTED: Attempting to reserve ...`): the words people search for
        return f"{found.group('status')}: {found.group('msg')}"
    if _JSON_HINT.search(body) or _JSON_START.search(body):
        record = json_record(log, i)
        if record:
            return record
    found = _HTTP_ERROR.search(body)
    if found:
        # as printed but its brackets (`HttpError 403` is what people search for); the request's URL
        # stays: the region or resource in it is often what is wrong
        return f"HttpError {found.group('code')} when requesting {found.group('url')} returned \"{found.group('msg')}\""
    found = _STATUS_LINE_ERROR.search(body)
    if found:
        record = body_after(log, i)
        if record:
            return f"{found.group('cls')}: {record}"
    found = _VERTEX_FORM.search(body)
    if found:
        return found.group("msg")
    return None


# google-api-java-client's GoogleJsonResponseException prints its status line, then (on the
# next lines) the request and the error object: `403 Forbidden`, `POST https://...`, `{`, ...
_STATUS_LINE_ERROR = re.compile(r"\b(?P<cls>[A-Za-z_]\w*(?:Exception|Error)): \d{3}(?: [A-Z][A-Za-z-]*)+\s*$")
BODY_REACH = 3


def body_after(log: Bodies, i: int) -> str | None:
    """The code and message of the JSON error object printed just after line i, if one is."""
    for j in range(i + 1, min(len(log), i + 1 + BODY_REACH)):
        if log.body(j).strip() != "{":
            continue
        for k in range(j + 1, min(len(log), j + 40)):
            if _JSON_MESSAGE.search(log.body(k)):
                return json_record(log, k)
            if log.body(k).startswith("}"):
                return None
    return None


# A Cloud Run (or Kubernetes) condition printed as JSON: `"message": "Execution failed."` beside
# `"reason": "NonZeroExitCode"` (conditions' reasons are UpperCamelCase; Google error bodies'
# `"reason": "forbidden"` are not)
_CONDITION_MESSAGE = re.compile(r"^\s*\"message\"\s*:\s*\"(?P<msg>(?:[^\"\\]|\\.)*)\",?\s*$")
_CONDITION_REASON = re.compile(r"^\s*\"reason\"\s*:\s*\"(?P<reason>[A-Z][A-Za-z]+)\",?\s*$")
CONDITION_REACH = 4


def condition_record(log: Bodies, i: int) -> str | None:
    """`Reason: message` of a condition object whose message is line i, if it is one."""
    found = _CONDITION_MESSAGE.match(log.body(i))
    if not found:
        return None
    for j in range(max(0, i - CONDITION_REACH), min(len(log), i + CONDITION_REACH + 1)):
        reason = _CONDITION_REASON.match(log.body(j))
        if reason:
            return f"{reason.group('reason')}: {found.group('msg')}"
    return None


def grpc_record(log: Bodies, i: int) -> str | None:
    """`status = StatusCode.X` and `details = "..."` of a gRPC error, a few lines apart."""
    status = details = None
    for j in range(max(0, i - 4), min(len(log), i + 5)):
        body = log.body(j)
        status = status or _GRPC_STATUS.search(body)
        details = details or _GRPC_DETAILS.search(body)
    if not status or status.group("status") not in GRPC_STATUS:
        return None
    # as printed (`status = StatusCode.DEADLINE_EXCEEDED`); gRPC does not escape quotes inside
    # details: the greedy match keeps them
    named = f"StatusCode.{status.group('status')}"
    return f"{named}: {details.group('msg')}" if details else named


def json_record(log: Bodies, i: int) -> str | None:
    """The status, code and message of a Google JSON error body around line i."""
    start = i
    for j in range(i, max(-1, i - 30), -1):
        if _JSON_START.search(log.body(j)):
            start = j
            break
    else:  # the error object printed on its own: `{` then "code", "message", "status"
        for j in range(i, max(-1, i - 30), -1):
            if log.body(j).strip().endswith("{") and "}" not in log.body(j):
                start = j
                if not log.body(j).startswith((" ", "\t")):
                    break
    parts: list[str] = []
    depth = 0
    opened = False
    for j in range(start, min(len(log), start + 60)):
        body = log.body(j)
        parts.append(body)
        depth += body.count("{") - body.count("}")
        opened = opened or "{" in body
        if opened and depth <= 0 and j >= i:
            break
    block = "\n".join(parts)
    status = _JSON_STATUS.search(block)
    code = _JSON_CODE.search(block)
    message = _JSON_MESSAGE.search(block)
    if not message or not (status or code):
        return None
    text = message.group("dq") if message.group("dq") is not None else message.group("sq")
    try:
        text = json.loads(f'"{text}"')
    except ValueError:
        pass
    if status:
        cls, number = GRPC_STATUS[status.group("status")]
        return f"{cls}: {code.group('code') if code else number} {text}"
    assert code is not None  # a message comes with a status or a code (above)
    return f"{code.group('code')} {text}"


def tidy(text: str) -> str:
    """Drop quoting and protobuf tails left over from the form the error was printed in."""
    text = _DETAILS_TAIL.sub("", text).strip()
    while True:
        before = text
        if text.endswith("\\n"):
            text = text[:-2]
        text = text.removesuffix(",")
        for quote in ("'", '"'):
            # Only a closing quote whose opening one was cut off with the line's start.
            if text.endswith(quote) and text.count(quote) % 2 == 1:
                text = text[:-1]
        text = text.rstrip()
        if text == before:
            return text


