"""The sandbox's HTTP core: routes requests to the fake services and applies faults."""

from __future__ import annotations

import importlib
import json
import pathlib
import re
import signal
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, Iterable, Mapping, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from arrctl.sandbox import SandboxError, demo_config_toml, endpoint_env
from arrctl.sandbox.base import Clock, Request, Response, Service, google_error
from arrctl.sandbox.faults import SERVICES, Fault, FaultTable, faults_from_env, parse_faults
from arrctl.sandbox.clock import ScenarioClock
from arrctl.sandbox.scenario import read_meta, resolve_dir, scenario_dir

GOOGLE_MODULES = ("run", "vertex", "build", "cloudlogging", "storage")
# Which service a path belongs to, decided before answering so faults can pre-empt the answer.
ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("run", re.compile(r"^/v2/projects/[^/]+/locations/[^/]+/(jobs|operations)([/:]|$)")),
    ("vertex", re.compile(r"^/v1/projects/[^/]+/locations/[^/]+/customJobs([/:]|$)")),
    ("build", re.compile(r"^/v1/projects/[^/]+/(locations/[^/]+/)?builds([/:]|$)")),
    ("logging", re.compile(r"^/v2/(entries:list$|[a-zA-Z]+/[^/]+/logs)")),
    ("storage", re.compile(r"^/(download/)?storage/v1/b/")),
)
GOOGLE_PREFIXES = ("/v1/", "/v2/", "/storage/", "/download/storage/")
IDLE_TIMEOUT_S = 300.0  # a keep-alive connection left idle this long is closed


def classify(path: str, has_wandb: bool) -> str | None:
    """The fault SERVICE word of a request path (None: no service owns it)."""
    for name, pattern in ROUTES:
        if pattern.match(path):
            return name
    if path.startswith(GOOGLE_PREFIXES) or path.startswith("/_sandbox"):
        return None
    return "wandb" if has_wandb else None


def load_services(directory: pathlib.Path, clock: Clock,
                  warn: IO[str] | None = None) -> list[Service]:
    """The four Google services, plus W&B when its module is importable."""
    services: list[Service] = [
        importlib.import_module(f"arrctl.sandbox.{module}").create(directory, clock)
        for module in GOOGLE_MODULES
    ]
    warn = warn or sys.stderr
    try:
        wandb_module = importlib.import_module("arrctl.sandbox.wandb")
    except ModuleNotFoundError as exc:
        if exc.name != "arrctl.sandbox.wandb":
            print(f"arrctl sandbox: W&B service not loaded: {exc}", file=warn)
        return services
    except ImportError as exc:  # written in parallel: a broken module must not stop Google
        print(f"arrctl sandbox: W&B service not loaded: {exc}", file=warn)
        return services
    try:
        services.append(wandb_module.create(resolve_dir(directory, "wandb.json"), clock))
    except Exception as exc:  # noqa: BLE001 - same reason; say it and serve the rest
        print(f"arrctl sandbox: W&B service not loaded: {exc!r}", file=warn)
    return services


def error_response(service: str, code: int, request: Request | None = None) -> Response:
    """The body an API answers with an injected status: Google's shape, or W&B's."""
    if code == 403 and request is not None and service in ("run", "vertex", "build", "logging"):
        from arrctl.sandbox.iam import permission_denied

        denied = permission_denied(service, request)  # the permission the route needs, as the real APIs say it
        if denied is not None:
            return denied
    if code == 403 and request is not None and service == "storage":
        from arrctl.sandbox.storage import forbidden

        if (denied := forbidden(request)) is not None:
            return denied
    if service == "wandb":
        return Response(code, {"errors": [{"message": f"sandbox fault wandb:status:{code}"}]})
    if service == "logging" and code == 429:  # the real quota error, details and all
        from arrctl.sandbox.cloudlogging import quota_exceeded

        return quota_exceeded()
    messages = {
        403: "The caller does not have permission",
        429: "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per "
             "minute' of service",
        503: "The service is currently unavailable.",
    }
    text = messages.get(code, f"HTTP {code}")
    return google_error(code, f"{text} (sandbox fault {service}:status:{code})")


def encode(response: Response) -> tuple[bytes, str]:
    """The body bytes and content type of a Response."""
    body = response.body
    if isinstance(body, (bytes, bytearray)):
        return bytes(body), response.content_type
    if isinstance(body, str):
        return body.encode("utf-8", "surrogateescape"), response.content_type
    data = json.dumps({} if body is None else body, ensure_ascii=False, separators=(",", ":"))
    content_type = response.content_type
    if content_type == "application/json":
        content_type = "application/json; charset=UTF-8"
    return data.encode("utf-8", "surrogateescape"), content_type


class Counters:
    """Requests per service, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, int] = {name: 0 for name in SERVICES}
        self.requests["other"] = 0

    def count(self, service: str | None) -> None:
        """One more request for service (None counts as other)."""
        with self._lock:
            key = service or "other"
            self.requests[key] = self.requests.get(key, 0) + 1

    def snapshot(self) -> dict[str, int]:
        """A copy of the counters."""
        with self._lock:
            return dict(self.requests)


class SandboxServer:
    """The fake cloud on 127.0.0.1: one ThreadingHTTPServer, the services, the faults."""

    def __init__(self, scenario: str | pathlib.Path = "default", faults: Iterable[Fault] = (),
                 clock: Clock | None = None, port: int = 0,
                 services: Sequence[Service] | None = None) -> None:
        self.directory = scenario if isinstance(scenario, pathlib.Path) else scenario_dir(scenario)
        self.meta = read_meta(self.directory)
        self.scenario = self.directory.name
        self.clock: Clock = clock or ScenarioClock(float(self.meta.get("speed", 1.0)))
        self.faults = FaultTable(faults)
        self.services = list(services) if services is not None else load_services(
            self.directory, self.clock)
        self.by_name = {service.name: service for service in self.services}
        self.counters = Counters()
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        try:
            self.httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        except OSError as exc:
            raise SandboxError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
        self.httpd.app = self

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.port}"

    def serve_forever(self) -> None:
        """Serve in this thread until stop()."""
        self.httpd.serve_forever(poll_interval=0.1)

    def start(self) -> "SandboxServer":
        """Serve from a daemon thread (in-process use: tests)."""
        self._thread = threading.Thread(target=self.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release hung requests and close every open connection."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
        self.httpd.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def track(self, connection: socket.socket, alive: bool) -> None:
        """Remember open connections so stop() can close them."""
        with self._connections_lock:
            (self._connections.add if alive else self._connections.discard)(connection)

    def stats(self) -> dict[str, Any]:
        """The body of GET /_sandbox/stats."""
        return {"requests": self.counters.snapshot(), "scenario": self.scenario,
                "t": round(self.clock.t(), 3), "faults": self.faults.specs(),
                "services": sorted(self.by_name),
                # what a service counts itself (W&B: its GraphQL operations and file downloads)
                "operations": {s.name: dict(seen) for s in self.services
                               if isinstance(seen := getattr(s, "seen", None), dict)}}

    def internal(self, request: Request) -> Response:
        """The sandbox's own routes under /_sandbox/."""
        if request.path == "/_sandbox/stats" and request.method == "GET":
            return Response(200, self.stats())
        if request.path == "/_sandbox/config" and request.method == "GET":
            return Response(200, demo_config_toml().encode(), "application/toml")
        return google_error(404, f"No sandbox route {request.method} {request.path}")


class _HTTPServer(ThreadingHTTPServer):
    """Daemon request threads; the app rides along."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # 18 regions connect at once; the default backlog of 5 drops some
    app: SandboxServer


class _Handler(BaseHTTPRequestHandler):
    """One connection: read requests, dispatch, write each answer with a single send."""

    protocol_version = "HTTP/1.1"
    server_version = "arrctl-sandbox"
    timeout = IDLE_TIMEOUT_S
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.app.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: a sandbox under test must not spray stderr."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _read_body(self) -> bytes:
        """The request body (Content-Length or chunked)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        request = Request(
            method=self.command, path=unquote(split.path),
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()}, body=self._read_body())
        if request.path.startswith("/_sandbox/"):
            self._send(app.internal(request))
            return
        name = classify(request.path, "wandb" in app.by_name)
        app.counters.count(name)
        faults = app.faults
        if pages := faults.get(name, "pages"):
            request.pages = int(pages.arg or 1)
        if latency := faults.get(name, "latency"):
            if app.stopping.wait(float(latency.arg or 0)):
                self.close_connection = True
                return
        if faults.get(name, "hang"):
            app.stopping.wait()  # never answer; the socket stays open until the server stops
            self.close_connection = True
            return
        if status := faults.get(name, "status"):
            response = error_response(name or "other", int(status.arg or 500), request)
        else:
            response = self._answer(app, name, request)
        body, content_type = encode(response)
        if faults.get(name, "malformed") and response.status < 400:
            body = body[: max(1, len(body) // 2)] if body else b"{"  # cut mid-value: invalid
        trickle = faults.get(name, "trickle")
        self._send_bytes(response.status, body, content_type, response.headers,
                         float(trickle.arg or 0) if trickle else None)

    def _answer(self, app: SandboxServer, name: str | None, request: Request) -> Response:
        """The owning service's answer, a 404 when none answers, a 500 when one breaks."""
        service = app.by_name.get(name or "")
        try:
            response = service.handle(request) if service is not None else None
        except Exception as exc:  # noqa: BLE001 - a fake's bug must come back as an HTTP 500
            traceback.print_exc()
            return google_error(500, f"sandbox error in {name}: {exc!r}")
        if response is None:
            return google_error(404, (
                f"The requested URL {request.path} was not found on this server "
                f"({request.method})."))
        return response

    def _send(self, response: Response) -> None:
        body, content_type = encode(response)
        self._send_bytes(response.status, body, content_type, response.headers, None)

    def _send_bytes(self, status: int, body: bytes, content_type: str,
                    headers: Mapping[str, str], trickle_s: float | None) -> None:
        """Headers and body in ONE send (two sends cost ~40 ms of delayed ACK), or trickled."""
        reason = self.responses.get(status, ("Error",))[0]
        lines = [f"HTTP/1.1 {status} {reason}", f"Content-Type: {content_type}",
                 f"Content-Length: {len(body)}", f"Date: {self.date_time_string()}",
                 f"Server: {self.server_version}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if trickle_s is None:
                self.wfile.write(head + body)
                return
            self.wfile.write(head)
            stopping = self.server.app.stopping
            for index in range(len(body)):
                if stopping.wait(trickle_s):
                    self.close_connection = True
                    return
                self.wfile.write(body[index:index + 1])
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def serve(port: int = 0, scenario: str = "default", faults: Sequence[str] = (),
          stdout: IO[str] | None = None, environ: Mapping[str, str] | None = None,
          stop: threading.Event | None = None) -> int:
    """`arrctl sandbox serve`: print the exports and the config, serve until SIGINT/SIGTERM.

    Faults are ARRCTL_SANDBOX_FAULTS (from environ) then `faults`; a bad one raises ValueError,
    an unknown scenario ValueError, a busy port SandboxError. Returns 130 after SIGINT, 143
    after SIGTERM, 0 when `stop` was set.
    """
    import os

    stdout = stdout or sys.stdout
    environ = os.environ if environ is None else environ
    parsed = parse_faults(faults_from_env(environ) + list(faults))
    server = SandboxServer(scenario, parsed, port=port)
    stop = stop or threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        received.append(signum)
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        server.start()
        stdout.write(banner(server))
        stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        return 130 if received[0] == signal.SIGINT else 143
    return 0


def banner(server: SandboxServer) -> str:
    """What `serve` prints: the exports, then the served config as comment lines."""
    lines = [f"# arrctl sandbox: scenario {server.scenario}, listening on {server.url} "
             "(Ctrl-C to stop)"]
    if server.faults.specs():
        lines.append(f"# faults: {', '.join(server.faults.specs())}")
    lines += [f"export {key}={value}" for key, value in endpoint_env(server.url).items()]
    lines.append("# the config it serves (save it without the leading '# ' and pass --config):")
    lines += [f"# {line}".rstrip() for line in demo_config_toml().splitlines()]
    return "\n".join(lines) + "\n"
