"""What the two W&B sources share: a run node into a row, the client set-up, one-line errors.

`parse_run` is pure and works on a GraphQL `Run` node as W&B sends it (`config` and
`summaryMetrics` as JSON strings) or as `node_of` rebuilds it from a `wandb` Run (dicts).
`fetch_runs` is the thin I/O part: it makes `wandb.Api()` after the fork, in a private
directory, with its retries bounded (shared/CLIENTS.md, "W&B"), and turns every failure into
a `SourceError` with one line and no secret.

The server is the one the user chose, in wandb's own order (wandb/sdk/wandb_setup.py
`_load_settings`: settings files, then environment variables): WANDB_BASE_URL, else the
`base_url` that `wandb login --host URL` writes to the user's settings file, else wandb's
default. The settings file is read before the private config directory replaces
WANDB_CONFIG_DIR, or it would never be seen.
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import json
import math
import os
import pathlib
import re
import shutil
import tempfile
import time
from typing import Any, Iterator, Mapping
from urllib.parse import quote, urlsplit

from arrctl.model import Row, epoch, iso_z, make_row
from arrctl.sanitize import one_line
from arrctl.sources import Emitter, FetchContext, SourceError, SourceTimeout

DEFAULT_APP_URL = "https://wandb.ai"

# preempting: still executing while W&B winds it down. preempted: stopped by the platform, not
# by an error in the run, and it stays stopped unless requeued: CANCELLED, as Vertex does.
STATUS_BY_STATE: dict[str, str] = {
    "pending": "PENDING", "running": "RUNNING", "preempting": "RUNNING",
    "finished": "SUCCEEDED", "failed": "FAILED", "crashed": "FAILED",
    "killed": "CANCELLED", "preempted": "CANCELLED",
}
TERMINAL_STATES: tuple[str, ...] = ("finished", "failed", "crashed", "killed")  # SPEC's `completed`
ENDED_STATES = frozenset(TERMINAL_STATES) | {"preempted"}
ERROR_SUMMARY_KEYS: tuple[str, ...] = ("error", "exception", "error_message", "failure_reason")
MESSAGE_CHARS = 300
MAX_TIMEOUT_S = 10

NOT_CONFIGURED = ("W&B entity/project not configured: set [wandb] entity and project, "
                  "or WANDB_ENTITY/WANDB_PROJECT")
NO_API_KEY = "W&B API key not set: export WANDB_API_KEY (or use --demo)"


class MalformedRun(ValueError):
    """A run node without the fields every run has."""


# --- pure: node -> row -----------------------------------------------------------------------

def as_dict(value: Any) -> dict[str, Any]:
    """A JSON-string field (config, summaryMetrics) as a dict; {} when absent or unreadable."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (str, bytes, bytearray)) and value:
        try:
            parsed = json.loads(value, strict=False)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def normalise_status(state: str | None) -> str:
    """SPEC's status for a W&B run state (UNKNOWN for a word W&B may add later)."""
    return STATUS_BY_STATE.get((state or "").lower(), "UNKNOWN")


def root_error(text: str) -> str:
    """The line that names the error: a traceback's last line, else the first non-blank one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        return lines[-1]
    return lines[0]


def run_message(state: str | None, summary: Mapping[str, Any], heartbeat_at: str | None) -> str | None:
    """For a failed or crashed run, the best one-line reason W&B holds; None for other runs."""
    if normalise_status(state) != "FAILED":
        return None
    for key in ERROR_SUMMARY_KEYS:
        value = summary.get(key)
        if isinstance(value, str) and value.strip():
            return one_line(root_error(value), MESSAGE_CHARS)
    if state == "crashed":
        return f"run crashed: no heartbeat since {heartbeat_at}" if heartbeat_at else "run crashed"
    return "run failed (no error recorded in its summary)"


def run_url(entity: str, project: str, run_id: str, app_url: str = DEFAULT_APP_URL) -> str:
    """The run's page in the W&B app."""
    parts = (quote(entity, safe=""), quote(project, safe=""), "runs", quote(run_id, safe=""))
    return app_url.rstrip("/") + "/" + "/".join(parts)


def parse_run(node: Mapping[str, Any], now: float, *, source: str, entity: str, project: str,
              url: str | None = None) -> Row:
    """A row of `source` from one W&B run node; `now` (epoch s) dates running runs and ages."""
    run_id = node.get("name")
    if not isinstance(run_id, str) or not run_id:
        raise MalformedRun("a run without a name (its id)")
    raw = node.get("state")
    raw = raw.lower() if isinstance(raw, str) and raw else None
    status = normalise_status(raw)
    summary = as_dict(node.get("summaryMetrics"))
    created = iso_z(node.get("createdAt"))
    heartbeat_at = iso_z(node.get("heartbeatAt"))

    finished = None
    if raw in ENDED_STATES:
        # the last heartbeat is when the run stopped talking; _runtime is the fallback, since it
        # counts only the time the process ran (a resumed run's createdAt is the first start)
        finished = heartbeat_at
        runtime = summary.get("_runtime")
        if finished is None and created and isinstance(runtime, (int, float)) and math.isfinite(runtime):
            finished = iso_z(epoch(created) + float(runtime))  # type: ignore[operator]
        duration = duration_s(created, finished)
    elif status == "PENDING" or created is None:
        duration = None
    else:
        duration = round(max(0.0, now - epoch(created)), 1)  # type: ignore[operator]

    beat = epoch(heartbeat_at)
    message = run_message(raw, summary, heartbeat_at)  # W&B's own words; a console log may say more
    user = node.get("user") if isinstance(node.get("user"), Mapping) else {}
    tags = node.get("tags")
    return make_row(
        source, run_id, status,
        raw_status=raw,
        name=node.get("displayName") or None,
        created=created,
        started=None if status == "PENDING" else created,
        finished=finished,
        duration_s=duration,
        message=message,
        url=url or run_url(entity, project, run_id),
        extra={
            "heartbeat_at": heartbeat_at,
            "heartbeat_age_s": None if beat is None else round(now - beat, 1),
            "user": user.get("username") or user.get("name"),
            "tags": [str(tag) for tag in tags] if isinstance(tags, list) else [],
            "group": node.get("group"),
            "job_type": node.get("jobType"),
            "entity": entity,
            "project": project,
            **({"api_message": message} if status == "FAILED" else {}),
        },
    )


def duration_s(start: str | None, end: str | None) -> float | None:
    """Seconds between two RFC 3339 times, rounded to 0.1 s, never negative."""
    a, b = epoch(start), epoch(end)
    return None if a is None or b is None else round(max(0.0, b - a), 1)


# --- errors ----------------------------------------------------------------------------------

_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")
_NOT_JSON = ("invalid character", "looking for beginning of value", "unexpected EOF",
             "cannot unmarshal", "unexpected end of JSON")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def http_status(exc: BaseException) -> int | None:
    """The HTTP status W&B answered with, if the failure carries one."""
    for item in _chain(exc):
        response = getattr(item, "response", None)
        code = getattr(response, "http_status", None)
        if isinstance(code, int) and code:
            return code
        code = getattr(response, "status_code", None)  # requests' HTTPError (older wandb)
        if isinstance(code, int) and code:
            return code
    found = _HTTP_STATUS.search(" ".join(str(item) for item in _chain(exc)))
    return int(found.group(1)) if found else None


def host_of(base_url: str) -> str:
    """host[:port] of a URL, without any user:password part."""
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError:
        return "the W&B server"
    host = parts.hostname or "the W&B server"
    return f"{host}:{port}" if port else host


def is_timeout(exc: BaseException) -> bool:
    """Whether the failure is the server not answering in time (reported as state `timeout`)."""
    joined = " ".join(str(item) for item in _chain(exc))
    return any(isinstance(item, TimeoutError) for item in _chain(exc)) or "did not respond in time" in joined \
        or "Client.Timeout" in joined or "deadline exceeded" in joined.lower()


def describe_error(exc: BaseException, *, base_url: str, timeout_s: float, secret: str | None = None,
                   path: str | None = None) -> str:
    """One line, prefixed `W&B:`, for any failure of the W&B client; never a traceback or a key.

    `path` is the "entity/project" asked for, named when W&B says it does not exist.
    """
    texts = [str(item) for item in _chain(exc)]
    innermost = texts[-1] if texts else ""
    joined = " ".join(texts)
    host = host_of(base_url)
    code = http_status(exc)
    if code in (401, 403):
        reason = f"authentication failed ({code}) at {host}: check WANDB_API_KEY"
    elif code == 404:
        reason = f"not found (404) at {host}: check WANDB_BASE_URL"
    elif code == 429:
        reason = "rate limited (429), gave up after retries"
    elif code is not None and code >= 500:
        reason = f"server error ({code}) from {host}"
    elif code is not None:
        reason = f"HTTP {code} from {host}"
    elif isinstance(exc, MalformedRun):
        reason = f"malformed response: {exc}"
    elif "connection refused" in joined:
        reason = f"cannot connect to {host}: connection refused"
    elif "no such host" in joined:
        reason = f"cannot connect to {host}: unknown host"
    elif is_timeout(exc):
        reason = f"no answer from {host} within {timeout_s:g} s"
    elif any(marker in innermost for marker in _NOT_JSON) and 'Post "' not in innermost:
        reason = "malformed response (not JSON)"
    elif 'Post "' in innermost or "dial tcp" in innermost:
        reason = f"connection to {host} failed: {innermost.rsplit(': ', 1)[-1]}"
    elif innermost.startswith("input:"):  # GraphQL `errors`, as wandb-core reports them
        reason = f"GraphQL error: {innermost[len('input:'):].strip()}"
    elif isinstance(exc, ValueError) and innermost.startswith("Could not find project"):
        reason = f"project {path or ''} not found: check [wandb] entity and project".replace("  ", " ")
    elif isinstance(exc, (KeyError, TypeError, AttributeError, IndexError)):
        reason = f"malformed response ({type(exc).__name__}: {innermost})"
    else:
        reason = f"{type(exc).__name__}: {innermost}" if innermost else type(exc).__name__
    if secret:
        reason = reason.replace(secret, "[REDACTED]")
    return one_line(f"W&B: {reason}", MESSAGE_CHARS)


# --- I/O: the client -------------------------------------------------------------------------

def target(config: Any) -> tuple[str, str]:
    """(entity, project) from the config, or the one-line reason why not."""
    entity = getattr(config, "wandb_entity", None) or os.environ.get("WANDB_ENTITY")
    project = getattr(config, "wandb_project", None) or os.environ.get("WANDB_PROJECT")
    if not entity or not project:
        raise SourceError(NOT_CONFIGURED)
    return entity, project


def timeout_for(ctx: FetchContext) -> int:
    """Whole seconds per W&B request (WANDB_HTTP_TIMEOUT is read with int())."""
    return max(1, min(MAX_TIMEOUT_S, math.ceil(ctx.call_timeout_s)))


PRIVATE_DIR_PREFIX = "arrctl-wandb-"


def sweep_private_dirs(root: str | None = None) -> None:
    """Remove the private directories of workers that died before removing their own.

    A worker killed at its deadline cannot clean up; its pid is in the directory's name.
    """
    for path in pathlib.Path(root or tempfile.gettempdir()).glob(f"{PRIVATE_DIR_PREFIX}*-*"):
        pid = path.name[len(PRIVATE_DIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive (EPERM) or unknowable: leave it
            pass


@contextlib.contextmanager
def private_wandb_env(timeout_s: int) -> Iterator[str]:
    """Bounded retries, no telemetry, no prompts, and a private directory removed at the end."""
    with contextlib.suppress(OSError):
        sweep_private_dirs()
    tmp = tempfile.mkdtemp(prefix=f"{PRIVATE_DIR_PREFIX}{os.getpid()}-")
    # importing wandb makes two TemporaryDirectory objects (wandb-media, wandb-artifacts) that
    # only a normal interpreter exit removes; a worker leaves with os._exit, so they go in here
    saved_tempdir, tempfile.tempdir = tempfile.tempdir, tmp
    settings = {
        "TMPDIR": tmp,  # and wandb-core's own temporary files
        "WANDB_SILENT": "true",
        "WANDB_ERROR_REPORTING": "false",
        "WANDB__GRAPHQL_RETRY_MAX": "1",  # 0 means "the default" (minutes of retries)
        "WANDB__GRAPHQL_RETRY_WAIT_MAX_SECONDS": "1",
        "WANDB_HTTP_TIMEOUT": str(timeout_s),
        "WANDB_DIR": tmp, "WANDB_CACHE_DIR": tmp, "WANDB_CONFIG_DIR": tmp,
        "WANDB_DATA_DIR": tmp,
    }
    saved = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield tmp
    finally:
        tempfile.tempdir = saved_tempdir
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(tmp, ignore_errors=True)


def node_of(run: Any) -> dict[str, Any]:
    """The GraphQL node fields parse_run reads, from a `wandb.apis.public.Run`'s public attributes."""
    user = getattr(run, "user", None)
    return {
        "name": run.id, "displayName": run.name, "state": run.state,
        "summaryMetrics": run.summary_metrics,
        "createdAt": getattr(run, "created_at", None), "heartbeatAt": getattr(run, "heartbeat_at", None),
        "user": {"username": getattr(user, "username", None), "name": getattr(user, "name", None)},
        "tags": getattr(run, "tags", None), "group": getattr(run, "group", None),
        "jobType": getattr(run, "job_type", None),
    }


def user_settings_file(environ: Mapping[str, str]) -> pathlib.Path:
    """wandb's global settings file: $WANDB_CONFIG_DIR/settings, else ~/.config/wandb/settings.

    As wandb 0.31 resolves it in wandb/sdk/wandb_setup.py (`_WandbSetup._load_settings`).
    """
    config_dir = environ.get("WANDB_CONFIG_DIR")
    if config_dir:
        return pathlib.Path(config_dir).expanduser() / "settings"
    home = environ.get("HOME") or str(pathlib.Path.home())
    return pathlib.Path(home) / ".config" / "wandb" / "settings"


def settings_base_url(environ: Mapping[str, str]) -> str | None:
    """The `base_url` of the user's wandb settings file (`wandb login --host` writes it), if any.

    The file is INI, section `[default]` (wandb/sdk/lib/settings_file.py: `_SECTION_NAME`,
    read with configparser); an unreadable file counts as empty, as wandb treats it.
    """
    parser = configparser.ConfigParser()
    try:
        parser.read(user_settings_file(environ))
        value = parser.get("default", "base_url", fallback=None)
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    return value.strip() if value and value.strip() else None


def chosen_base_url(ctx: FetchContext, environ: Mapping[str, str]) -> str | None:
    """The W&B server to use: the endpoint override, WANDB_BASE_URL, the settings file's base_url."""
    return ctx.wandb_base_url or environ.get("WANDB_BASE_URL") or settings_base_url(environ)


def _library_base_url(wandb: Any) -> str:
    """The server wandb talks to when nothing says otherwise (it changes between versions)."""
    try:
        return str(wandb.Settings().base_url)
    except Exception:  # noqa: BLE001 — only used to name the host in an error message
        return "https://api.wandb.ai"


@dataclasses.dataclass
class Client:
    """A `wandb.Api` made in this worker, and what describes its failures."""

    api: Any
    entity: str
    project: str
    base_url: str
    api_key: str
    timeout_s: int


@contextlib.contextmanager
def wandb_client(ctx: FetchContext, emit: Emitter, entity: str | None = None,
                 project: str | None = None) -> Iterator[Client]:
    """`wandb.Api()` in a private directory with bounded retries; any failure inside becomes one line.

    The helper it starts is stopped at the end (~3 ms) rather than left to notice our exit; not
    after a failure: a helper stuck in a hung request could make teardown wait, and an orphaned
    helper exits by itself within ~2 s.
    """
    configured = target(ctx.config) if not (entity and project) else (entity, project)
    entity, project = configured
    api_key = getattr(ctx.config, "wandb_api_key", None) or os.environ.get("WANDB_API_KEY")
    if not api_key:
        raise SourceError(NO_API_KEY)
    timeout_s = timeout_for(ctx)
    overrides: dict[str, Any] = {"entity": entity, "project": project}  # no GetDefaultEntity call
    base_url = chosen_base_url(ctx, os.environ) or ""  # before private_wandb_env hides the settings file
    if base_url:
        overrides["base_url"] = base_url
    with private_wandb_env(timeout_s):
        try:
            import wandb

            base_url = base_url or _library_base_url(wandb)
            emit.call("wandb")  # Api() checks the key with a Viewer query
            api = wandb.Api(api_key=api_key, overrides=overrides, timeout=timeout_s)
            yield Client(api, entity, project, base_url, api_key, timeout_s)
            with contextlib.suppress(Exception):
                wandb.teardown()
        except SourceError:
            raise
        except Exception as exc:  # noqa: BLE001 — every client failure becomes one line
            kind = SourceTimeout if http_status(exc) is None and is_timeout(exc) else SourceError
            raise kind(describe_error(exc, base_url=base_url, timeout_s=timeout_s,
                                      secret=api_key, path=f"{entity}/{project}")) from None


def fetch_runs(ctx: FetchContext, emit: Emitter, *, source: str, filters: dict[str, Any],
               limit: int, per_page: int, order: str = "-created_at", console_logs: bool = False) -> None:
    """Emit the newest `limit` runs matching `filters` as rows of `source` (one W&B query); with
    `console_logs`, the root errors of newly failed runs from their console logs (sources/wandb_logs.py)."""
    rows: list[Row] = []
    problem = None
    started = time.monotonic()
    with wandb_client(ctx, emit) as client:
        runs = client.api.runs(f"{client.entity}/{client.project}", filters=filters, order=order,
                               per_page=per_page, lazy=False)
        iterator = iter(runs)
        listed: dict[str, Any] = {}
        while len(rows) < limit:
            page_before = id(runs.last_response)
            try:
                run = next(iterator, None)
            except Exception:
                emit.call("wandb")  # the page request that failed
                raise
            if id(runs.last_response) != page_before:  # a page came over the wire
                emit.call("wandb")
            if run is None:
                break
            rows.append(parse_run(node_of(run), time.time(), source=source, entity=client.entity,
                                  project=client.project, url=run.url))
            listed[run.id] = run
        if console_logs:
            from arrctl.sources.wandb_logs import read_console_logs

            rows, problem = read_console_logs(ctx, emit, listed, rows, base_url=client.base_url,
                                              api_key=client.api_key, timeout_s=client.timeout_s,
                                              deadline_at=started + ctx.deadline_s - 0.5)
    emit.rows(rows)
    if problem:
        raise SourceError(problem)


__all__ = [
    "STATUS_BY_STATE", "TERMINAL_STATES", "MalformedRun", "as_dict", "describe_error", "fetch_runs",
    "normalise_status", "parse_run", "root_error", "run_message", "run_url", "target",
]
