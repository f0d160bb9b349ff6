"""One-line reasons for the failures of Google API calls, and the summary of failed regions.

The client libraries raise from several families (api_core for HTTP errors, google.auth for
credentials, requests for the socket, protobuf/json for bodies that are not JSON); the user sees
one line naming what happened, never a traceback, never a URL with its query or a token.
"""

from __future__ import annotations

import http
import json
import re

from arrctl.kinds import ErrorKind, Reason, kind_of
from arrctl.sources import SourceError

MAX_DETAIL = 300  # characters of a server's own message kept in a reason
OTHER_ERROR_CHARS = 100  # characters kept of each region error after the first

_READ_TIMEOUT = re.compile(r"read timeout=([0-9.]+)")
_HOST = re.compile(r"host='([^']+)', port=(\d+)")
_REST_PREFIX = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) \S+: ")


def _flat(text: str, limit: int = MAX_DETAIL) -> str:
    """One line without control characters or secrets, cut to `limit` characters."""
    from arrctl.sanitize import one_line

    line = one_line(text)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _server_message(exc: BaseException) -> str:
    """The server's own `error.message` of an api_core exception (without method and URL)."""
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            payload = response.json()
            message = payload.get("error", {}).get("message") if isinstance(payload, dict) else None
            if isinstance(message, str) and message.strip():
                return message
        except Exception:  # noqa: BLE001 — a body that is not JSON: fall back to the parsed text
            pass
    return _REST_PREFIX.sub("", str(getattr(exc, "message", "") or ""))


def _host(exc: BaseException) -> str:
    """host:port named in a requests/urllib3 exception, or the request's URL host."""
    text = str(exc)
    found = _HOST.search(text)
    if found:
        return f"{found.group(1)}:{found.group(2)}"
    request = getattr(exc, "request", None)
    url = getattr(request, "url", None)
    if isinstance(url, str):
        from urllib.parse import urlsplit

        return urlsplit(url).netloc or url
    return "the API endpoint"


NO_ADC = "no Google credentials: run `gcloud auth application-default login`, or use --demo"
CREDENTIALS_VARIABLE = "GOOGLE_APPLICATION_CREDENTIALS"


def adc_error(exc: BaseException) -> Reason:
    """The reason for Application Default Credentials google.auth could not load, from where it
    looked: $GOOGLE_APPLICATION_CREDENTIALS and gcloud's file (the one place that reads them)."""
    import os

    return credentials_error(exc, os.environ.get(CREDENTIALS_VARIABLE), gcloud_adc_file())


def credentials_error(exc: BaseException, env_file: str | None, gcloud_file: str | None) -> Reason:
    """One line for credentials google.auth could not load: its own words, which name the file.

    `env_file` is $GOOGLE_APPLICATION_CREDENTIALS (None when unset), `gcloud_file` gcloud's
    application default credentials file when it exists. Only when there is neither is the advice
    to log in: a missing or malformed key file needs that file fixed, not a login.
    """
    if env_file is None and gcloud_file is None:
        return Reason(NO_ADC, ErrorKind.CREDENTIALS)
    if env_file == "":
        words = f"{CREDENTIALS_VARIABLE} is set but empty"
    elif isinstance(exc, OSError):  # a directory or an unreadable file: google.auth lets it through
        words = f"cannot read {exc.filename or env_file or gcloud_file}: {exc.strerror or exc}"
    else:  # DefaultCredentialsError(message[, cause]): "File k.json was not found.", "Failed to load ... from k.json"
        words = ": ".join(str(arg).strip().rstrip(".") for arg in exc.args if str(arg).strip()) or type(exc).__name__
    where = f"set by {CREDENTIALS_VARIABLE}" if env_file is not None else \
        "gcloud's application default credentials: run `gcloud auth application-default login` again"
    return Reason(f"Google credentials: {_flat(words)} ({where})", ErrorKind.CREDENTIALS)


def gcloud_adc_file() -> str | None:
    """gcloud's application default credentials file, when it exists (google.auth's own notion of where)."""
    import os

    try:
        from google.auth import _cloud_sdk

        path = _cloud_sdk.get_application_default_credentials_path()
    except Exception:  # noqa: BLE001 — a private helper of google.auth; without it, no file to name
        return None
    return path if os.path.isfile(path) else None


def describe_error(exc: BaseException, timeout_s: float | None = None) -> Reason:
    """A one-line reason for an exception raised by a Google client call, with its kind."""
    text = _describe(exc, timeout_s)
    return text if isinstance(text, Reason) else Reason(text, error_kind(exc))


def error_kind(exc: BaseException) -> ErrorKind:
    """What a Google client call's exception is about, by its type."""
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    import requests

    if isinstance(exc, api_exceptions.RetryError):
        # given up after retries: an error, not a timeout, though each try may have timed out
        inner = error_kind(exc.cause) if exc.cause is not None else ErrorKind.OTHER
        return ErrorKind.OTHER if inner is ErrorKind.TIMEOUT else inner
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return ErrorKind.CREDENTIALS
    if isinstance(exc, (requests.exceptions.ReadTimeout, TimeoutError)):
        return ErrorKind.TIMEOUT
    return ErrorKind.OTHER


def _describe(exc: BaseException, timeout_s: float | None) -> str:
    from google.api_core import exceptions as api_exceptions
    from google.auth import exceptions as auth_exceptions
    from google.protobuf import json_format
    import requests

    if isinstance(exc, api_exceptions.RetryError):
        cause = exc.cause
        inner = _describe(cause, timeout_s) if cause is not None else _flat(exc.message)
        return f"gave up after retries: {inner}"
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        code = exc.code
        try:
            phrase = http.HTTPStatus(int(code)).phrase if code is not None else ""
        except (ValueError, TypeError):
            phrase = ""
        head = f"{code} {phrase}".strip() if code is not None else type(exc).__name__
        detail = _flat(_server_message(exc))
        return f"{head}: {detail}" if detail else head
    if isinstance(exc, auth_exceptions.DefaultCredentialsError):
        return adc_error(exc)
    if isinstance(exc, auth_exceptions.GoogleAuthError):
        return f"credentials: {_flat(str(exc) or type(exc).__name__)}"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        found = _READ_TIMEOUT.search(str(exc))
        seconds = float(found.group(1)) if found else timeout_s
        return f"no answer within {round(seconds, 1):g}s" if seconds is not None else "no answer in time"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"cannot connect to {_host(exc)}: timed out"
    if isinstance(exc, (requests.exceptions.JSONDecodeError, json.JSONDecodeError, json_format.ParseError)):
        return f"malformed response: {_flat(str(exc), 120)}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "refused" in text.lower() or "NewConnectionError" in text or "Name or service" in text:
            return f"cannot connect to {_host(exc)}"
        return f"connection to {_host(exc)} broken: {_flat(_innermost_reason(text), 120)}"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"{type(exc).__name__}: {_flat(str(exc))}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {round(timeout_s, 1):g}s" if timeout_s is not None else "no answer in time"
    # Library messages go on for paragraphs; their first line says what happened.
    message = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {_flat(message)}" if message else type(exc).__name__


def _innermost_reason(text: str) -> str:
    """The most specific part of urllib3's nested reprs, e.g. `RemoteDisconnected(...)`."""
    found = re.findall(r"(\w+(?:Error|Disconnected|Exception)\('[^']*'\))", text)
    return found[-1] if found else text


PART_MARK = "\x00part\x00"  # where a reason names its own part (never in a sanitised reason)


def summarize_failures(failures: list[tuple[str, str]], total: int, noun: str = "regions") -> Reason:
    """`2 of 18 regions failed: europe-west2: 403 Forbidden: ...; asia-east1: ...` on one line.

    Regions failing with the same reason are named together, so 18 identical 403s stay short;
    the first reason is kept in full, the others are cut.
    """
    # A reason that differs only by the part it names (a 403 names its resource:
    # `.../locations/us-east1/jobs/J`) is the same reason: `<region>` stands for the part.
    groups: dict[str, list[str]] = {}
    for part, reason in failures:
        named = re.sub(rf"(?<![\w-]){re.escape(part)}(?![\w-])", PART_MARK, reason) if part else reason
        groups.setdefault(named, []).append(part)
    pieces = []
    for index, (reason, parts) in enumerate(groups.items()):
        if len(parts) == 1:
            reason = reason.replace(PART_MARK, parts[0])
        else:
            reason = reason.replace(PART_MARK, f"<{noun.rstrip('s')}>")
        names = ", ".join(parts) if len(parts) <= 3 else f"{', '.join(parts[:2])} and {len(parts) - 2} more"
        text = reason if index == 0 or len(reason) <= OTHER_ERROR_CHARS else reason[: OTHER_ERROR_CHARS - 1] + "…"
        pieces.append(f"{names}: {text}")
    kinds = {kind_of(reason) for _, reason in failures}
    kind = kinds.pop() if len(kinds) == 1 else ErrorKind.OTHER  # the parts' kind when they share one
    return Reason(f"{len(failures)} of {total} {noun} failed: " + "; ".join(pieces), kind)


def failure_error(failures: list[tuple[str, str]], total: int, noun: str = "regions") -> SourceError:
    """The exception for failed parts: of their kind when they share one (a timeout when every one
    of them simply did not answer)."""
    return SourceError(summarize_failures(failures, total, noun))


def in_order(failures: list[tuple[str, str]], parts: list[str]) -> list[tuple[str, str]]:
    """Failures in the configured order of their parts (threads finish in any order)."""
    rank = {part: n for n, part in enumerate(parts)}
    return sorted(failures, key=lambda failure: rank.get(failure[0], len(rank)))
