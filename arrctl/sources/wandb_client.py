"""The W&B client of the two W&B sources and of `explain`: made after the fork, bounded, one-line errors.

`wandb_client` makes `wandb.Api()` in a private directory, with its retries bounded (docs/architecture.md,
"Client libraries"), and turns every failure inside it into a `SourceError` with one line and no secret
(`describe_error`).

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
import math
import os
import pathlib
import re
import shutil
import tempfile
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

from arrctl.config import Config
from arrctl.kinds import ErrorKind
from arrctl.sanitize import one_line
from arrctl.sources import Emitter, FetchContext, SourceError

MESSAGE_CHARS = 300
MAX_TIMEOUT_S = 10

NOT_CONFIGURED = ("W&B entity/project not configured: set [wandb] entity and project, "
                  "or WANDB_ENTITY/WANDB_PROJECT")
NO_API_KEY = "W&B API key not set: export WANDB_API_KEY (or use --demo)"


class MalformedRun(ValueError):
    """A run node without the fields every run has."""


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


def error_kind(exc: BaseException) -> ErrorKind:
    """What a failure of the W&B client is about: its HTTP status, else whether it timed out."""
    code = http_status(exc)
    if code in (401, 403):
        return ErrorKind.CREDENTIALS
    return ErrorKind.TIMEOUT if code is None and is_timeout(exc) else ErrorKind.OTHER


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

def target(config: Config) -> tuple[str, str]:
    """(entity, project) from the config (which read WANDB_ENTITY/WANDB_PROJECT), or why not."""
    entity, project = config.wandb_entity, config.wandb_project
    if not entity or not project:
        raise SourceError(NOT_CONFIGURED, ErrorKind.CONFIGURATION)
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
    api_key = ctx.config.wandb_api_key  # the config read WANDB_API_KEY
    if not api_key:
        raise SourceError(NO_API_KEY, ErrorKind.CREDENTIALS)
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
            raise SourceError(describe_error(exc, base_url=base_url, timeout_s=timeout_s, secret=api_key,
                                             path=f"{entity}/{project}"), error_kind(exc)) from None
