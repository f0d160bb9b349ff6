"""The client factory, paging, region fan-out and one-line error reasons (no sandbox needed)."""

from __future__ import annotations

import json
import socket
import threading
import time
from types import SimpleNamespace

import pytest
import requests
from google.api_core import exceptions as api_exceptions
from google.auth import credentials as auth_credentials
from google.auth import exceptions as auth_exceptions
from google.protobuf import json_format

from arrctl.sources import clients
from arrctl.sources import FetchContext, SourceError
from arrctl.kinds import ErrorKind, Reason
from arrctl.sources.gcp_errors import describe_error, failure_error, summarize_failures

ENDPOINT = "http://127.0.0.1:9"


def ctx(endpoint: str | None = ENDPOINT, **kw) -> FetchContext:
    config = SimpleNamespace(project="arr-demo", regions=["us-central1"])
    return FetchContext(config=config, gcp_endpoint=endpoint, **kw)


def http_error(status: int, body: bytes, content_type: str = "application/json") -> Exception:
    """An api_core exception built from a response, the way the REST transports build it."""
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers["Content-Type"] = content_type
    response.request = requests.Request(
        "GET", "http://127.0.0.1:9/v2/projects/arr-demo/locations/us-central1/jobs/j/executions?pageSize=50").prepare()
    return api_exceptions.from_http_response(response)


# --- construction -------------------------------------------------------------------------

def test_clients_with_endpoint_use_rest_anonymous_and_the_endpoint():
    c = ctx()
    for client in (clients.run_executions_client(c), clients.run_jobs_client(c),
                   clients.vertex_job_client(c, "europe-west4"), clients.build_client(c)):
        transport = client._transport
        assert type(transport).__name__.endswith("RestTransport")
        assert transport._host == ENDPOINT
        assert isinstance(transport._credentials, auth_credentials.AnonymousCredentials)


def test_logging_connection_points_at_the_endpoint():
    connection = clients.logging_connection(ctx(), "arr-demo")
    assert connection.API_BASE_URL == ENDPOINT
    assert connection.build_api_url("/entries:list") == ENDPOINT + "/v2/entries:list?prettyPrint=false"


def test_a_missing_key_file_is_named_not_blamed_on_a_login(tmp_path):
    # conftest points GOOGLE_APPLICATION_CREDENTIALS at a file that does not exist
    clients._credentials_cache.clear()
    with pytest.raises(SourceError) as caught:
        clients.run_executions_client(ctx(endpoint=None))
    missing = tmp_path / "no-such-credentials.json"
    assert str(caught.value) == (
        f"Google credentials: File {missing} was not found (set by GOOGLE_APPLICATION_CREDENTIALS)")


@pytest.mark.parametrize(("content", "words"), [
    ('{"type": "service_account", "project_id": "p"}',
     "Failed to load service account credentials from {path}: "
     "Service account info was not in the expected format, missing fields "),  # a set: any order
    ("not json", "File {path} is not a valid json file: Expecting value: line 1 column 1 (char 0)"),
    ('{"type": "authorised"}', "The file {path} does not have a valid type. Type is authorised, expected one of "),
], ids=["missing-fields", "not-json", "unknown-type"])
def test_a_malformed_key_file_says_what_google_auth_says(tmp_path, monkeypatch, content, words):
    key = tmp_path / "key.json"
    key.write_text(content)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    clients._credentials_cache.clear()
    with pytest.raises(SourceError) as caught:
        clients.vertex_job_client(ctx(endpoint=None), "us-central1")
    message = str(caught.value)
    assert message.startswith("Google credentials: " + words.format(path=key)), message
    assert message.endswith("(set by GOOGLE_APPLICATION_CREDENTIALS)")
    assert "\n" not in message and "gcloud auth" not in message
    if "missing fields" in words:
        assert "client_email" in message and "token_uri" in message


def test_a_key_path_that_is_a_directory_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path))
    clients._credentials_cache.clear()
    with pytest.raises(SourceError) as caught:
        clients.build_client(ctx(endpoint=None))
    assert str(caught.value) == (
        f"Google credentials: cannot read {tmp_path}: Is a directory (set by GOOGLE_APPLICATION_CREDENTIALS)")


def test_only_no_credentials_at_all_asks_for_a_login(tmp_path):
    from google.auth import exceptions as auth_exceptions

    from arrctl.sources.gcp_errors import NO_ADC, credentials_error

    none = auth_exceptions.DefaultCredentialsError("Your default credentials were not found.")
    assert credentials_error(none, None, None) == NO_ADC
    adc = tmp_path / "application_default_credentials.json"
    broken = auth_exceptions.DefaultCredentialsError(
        f"Failed to load authorized user credentials from {adc}",
        ValueError("Authorized user info was not in the expected format, missing fields refresh_token."))
    assert credentials_error(broken, None, str(adc)) == (
        f"Google credentials: Failed to load authorized user credentials from {adc}: Authorized user info was "
        "not in the expected format, missing fields refresh_token (gcloud's application default credentials: "
        "run `gcloud auth application-default login` again)")
    assert credentials_error(none, "", None) == (
        "Google credentials: GOOGLE_APPLICATION_CREDENTIALS is set but empty (set by GOOGLE_APPLICATION_CREDENTIALS)")


def test_vertex_without_endpoint_uses_the_regional_host(monkeypatch):
    anonymous = auth_credentials.AnonymousCredentials()
    monkeypatch.setattr("google.auth.default", lambda scopes=None: (anonymous, "arr-demo"))
    clients._credentials_cache.clear()
    try:
        client = clients.vertex_job_client(ctx(endpoint=None), "asia-northeast1")
        assert client._transport._host == "https://asia-northeast1-aiplatform.googleapis.com"
        assert client._transport._credentials is anonymous
    finally:
        clients._credentials_cache.clear()


def test_call_kwargs_carry_the_timeout_and_no_retry():
    assert clients.call_kwargs(ctx(call_timeout_s=2.5)) == {"timeout": 2.5, "retry": None}


# --- paging -----------------------------------------------------------------------------

class FakePage:
    def __init__(self, items, token):
        self.executions = items
        self.next_page_token = token


class FakePager:
    """Yields its pages lazily and records how many were fetched, like a GAPIC pager."""

    def __init__(self, pages):
        self._pages = pages
        self.fetched = 1  # the first page comes with the pager

    @property
    def pages(self):
        for n, page in enumerate(self._pages):
            if n:
                self.fetched += 1
            yield page


def pager_of(*sizes):
    pages, start = [], 0
    for n, size in enumerate(sizes):
        pages.append(FakePage(list(range(start, start + size)), "" if n == len(sizes) - 1 else f"t{n + 1}"))
        start += size
    return FakePager(pages)


def test_take_pages_stops_when_enough_and_counts_requests():
    pager, requests_made = pager_of(2, 2, 2, 2), []
    items = clients.take_pages(pager, lambda: requests_made.append(1), lambda n: n >= 3, "executions")
    assert items == [0, 1, 2, 3]
    assert pager.fetched == 2 and len(requests_made) == 1


def test_take_pages_reads_to_the_last_page_and_no_further():
    pager, requests_made = pager_of(1, 1, 1), []
    assert clients.take_pages(pager, lambda: requests_made.append(1), lambda n: False, "executions") == [0, 1, 2]
    assert pager.fetched == 3 and len(requests_made) == 2


def test_take_pages_is_bounded():
    pager = pager_of(*([1] * 20))
    assert clients.take_pages(pager, lambda: None, lambda n: False, "executions", max_pages=5) == [0, 1, 2, 3, 4]
    assert pager.fetched == 5


# --- fan-out ----------------------------------------------------------------------------

def test_fan_out_yields_as_each_part_answers_with_one_line_errors():
    release = threading.Event()

    def work(part):
        if part == "slow":
            release.wait(2)
            return "late"
        if part == "bad":
            raise ValueError("no such region\nsecond line")
        if part == "src":
            raise SourceError("told you")
        return part.upper()

    seen = []
    for part, result, error in clients.fan_out(["slow", "a", "bad", "src"], work, budget_s=5):
        seen.append((part, result, error))
        if len(seen) == 3:
            release.set()
    assert seen[-1] == ("slow", "late", None)
    assert sorted(seen[:3]) == [("a", "A", None), ("bad", None, "ValueError: no such region"),
                                ("src", None, "told you")]


def test_fan_out_budget_abandons_hung_parts_on_daemon_threads():
    never = threading.Event()
    started = time.monotonic()
    out = list(clients.fan_out(["hang", "ok"], lambda p: never.wait(30) if p == "hang" else 1, budget_s=0.3))
    assert time.monotonic() - started < 2
    assert out == [("ok", 1, None), ("hang", None, "no answer within 0.3s")]
    hung = [t for t in threading.enumerate() if t.name == "fetch-hang"]
    assert hung and all(t.daemon for t in hung)
    never.set()


def test_locked_emitter_forwards_everything():
    calls = []
    inner = SimpleNamespace(plan=lambda parts: calls.append(("plan", parts)),
                            rows=lambda rows, part=None: calls.append(("rows", rows, part)),
                            facts=lambda facts: calls.append(("facts", facts)),
                            call=lambda api, n=1: calls.append(("call", api, n)))
    emit = clients.LockedEmitter(inner)
    emit.plan(["r"]), emit.rows([], part="r"), emit.facts([{}]), emit.call("run")
    assert calls == [("plan", ["r"]), ("rows", [], "r"), ("facts", [{}]), ("call", "run", 1)]


# --- describe_error ---------------------------------------------------------------------

def test_api_error_names_code_phrase_and_the_servers_message():
    exc = http_error(403, json.dumps({"error": {"code": 403, "message": "Permission 'run.executions.list' denied on resource", "status": "PERMISSION_DENIED"}}).encode())
    assert isinstance(exc, api_exceptions.Forbidden)
    assert describe_error(exc) == "403 Forbidden: Permission 'run.executions.list' denied on resource"


@pytest.mark.parametrize("status,phrase", [(404, "Not Found"), (429, "Too Many Requests"), (503, "Service Unavailable")])
def test_api_errors_of_other_codes(status, phrase):
    exc = http_error(status, json.dumps({"error": {"code": status, "message": "try again"}}).encode())
    assert describe_error(exc) == f"{status} {phrase}: try again"


def test_api_error_with_an_html_body_is_one_line_without_the_url():
    exc = http_error(502, b"<html>\n<body>Bad gateway</body>\n</html>", "text/html")
    text = describe_error(exc)
    assert text.startswith("502 Bad Gateway: ")
    assert "\n" not in text and "127.0.0.1" not in text and "pageSize" not in text
    assert "Bad gateway" in text


def test_retry_error_names_the_last_cause():
    cause = http_error(503, b'{"error": {"message": "backend unavailable"}}')
    exc = api_exceptions.RetryError("Timeout of 5.0s exceeded", cause)
    assert describe_error(exc) == "gave up after retries: 503 Service Unavailable: backend unavailable"


def test_auth_errors(monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "x")
    assert describe_error(auth_exceptions.DefaultCredentialsError("File x was not found.")) == (
        "Google credentials: File x was not found (set by GOOGLE_APPLICATION_CREDENTIALS)")
    refresh = auth_exceptions.RefreshError("Anonymous credentials cannot be refreshed.")
    assert describe_error(refresh) == "credentials: Anonymous credentials cannot be refreshed."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_names_the_host():
    port = free_port()
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{port}/v2/x", timeout=2)
    assert describe_error(caught.value) == f"cannot connect to 127.0.0.1:{port}"


def test_read_timeout_names_the_timeout():
    with socket.socket() as server:  # accepts connections (backlog) but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        with pytest.raises(requests.exceptions.ReadTimeout) as caught:
            requests.get(f"http://127.0.0.1:{port}/v1/x", timeout=0.2)
    assert describe_error(caught.value) == "no answer within 0.2s"
    assert describe_error(caught.value).kind is ErrorKind.TIMEOUT


def test_each_reason_carries_the_kind_it_was_made_with(monkeypatch):
    """Kinds come from the exception's type where it is caught, never from the words of the reason."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    assert describe_error(auth_exceptions.RefreshError("expired")).kind is ErrorKind.CREDENTIALS
    assert describe_error(auth_exceptions.DefaultCredentialsError("x")).kind is ErrorKind.CREDENTIALS
    assert describe_error(http_error(403, b'{"error": {"message": "no credentials: denied"}}')).kind is ErrorKind.OTHER
    assert describe_error(TimeoutError()).kind is ErrorKind.TIMEOUT
    retried = api_exceptions.RetryError("Timeout of 5.0s exceeded", TimeoutError())
    assert describe_error(retried).kind is ErrorKind.OTHER  # gave up: an error, though each try timed out
    timeouts = [("a", Reason("no answer within 3s", ErrorKind.TIMEOUT)), ("b", Reason("no answer in time", ErrorKind.TIMEOUT))]
    assert failure_error(timeouts, 2).kind is ErrorKind.TIMEOUT
    assert failure_error(timeouts[:1] + [("b", "no answer, said the proxy")], 2).kind is ErrorKind.OTHER
    assert SourceError("x").kind is ErrorKind.OTHER and SourceError(Reason("y", ErrorKind.CONFIGURATION)).kind is ErrorKind.CONFIGURATION


def test_malformed_bodies():
    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads('{"executions": [')
    assert describe_error(caught.value).startswith("malformed response: Expecting value")
    parse_error = json_format.ParseError("Failed to load JSON: Expecting ',' delimiter: line 1 column 9")
    assert describe_error(parse_error) == "malformed response: Failed to load JSON: Expecting ',' delimiter: line 1 column 9"
    response = requests.Response()
    response._content = b"\x00garbage"
    with pytest.raises(requests.exceptions.JSONDecodeError) as caught_requests:
        response.json()
    assert describe_error(caught_requests.value).startswith("malformed response: ")


def test_anything_else_is_type_and_message_on_one_line():
    assert describe_error(KeyError("executions")) == "KeyError: 'executions'"
    assert describe_error(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert describe_error(TimeoutError(), timeout_s=3) == "no answer within 3s"


def test_summarize_failures_groups_identical_reasons_and_keeps_the_first_whole():
    long_reason = "429 Too Many Requests: " + "x" * 150
    text = summarize_failures([("europe-west2", "403 Forbidden: denied"), ("asia-east1", long_reason)], 18)
    assert text == ("2 of 18 regions failed: europe-west2: 403 Forbidden: denied; asia-east1: "
                    + long_reason[:99] + "…")
    same = summarize_failures([(r, "cannot connect to 127.0.0.1:9") for r in ("a", "b", "c", "d")], 4)
    assert same == "4 of 4 regions failed: a, b and 2 more: cannot connect to 127.0.0.1:9"


def test_summarize_failures_groups_reasons_that_differ_only_by_the_region_they_name():
    def denied(region: str) -> str:
        return (f"403 Forbidden: Permission 'run.executions.list' denied on resource "
                f"'//run.googleapis.com/projects/p/locations/{region}/jobs/j' (or it may not exist).")

    text = summarize_failures([("us-central1", denied("us-central1")), ("us-east1", denied("us-east1")),
                               ("europe-west2", "no answer within 3s")], 18)
    assert text == ("3 of 18 regions failed: us-central1, us-east1: " + denied("<region>")
                    + "; europe-west2: no answer within 3s")
    assert summarize_failures([("us-east1", denied("us-east1"))], 18) == "1 of 18 regions failed: us-east1: " + \
        denied("us-east1")
