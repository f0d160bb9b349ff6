"""Configuration: a TOML file plus environment variables, validated into one dataclass."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from arrctl.model import SOURCES

DEFAULT_DEADLINE_S = 30.0
MAX_SECONDS = 86400  # every duration is bounded: no wait in arrctl may be endless (inf, nan, 1e9)
# a source's deadline, in [deadlines] as with --deadline: the same bounds in both places
MIN_DEADLINE_S, MAX_DEADLINE_S = 0.1, 3600.0
DEFAULT_REGIONS = ("us-central1",)


class ConfigError(Exception):
    """A configuration problem; the message is one line naming the file, the key and the fix."""


@dataclass(frozen=True)
class Config:
    """Everything arrctl needs to know about the pipeline it watches."""

    project: str | None = None
    """Google Cloud project id (`project`, else GOOGLE_CLOUD_PROJECT)."""
    regions: list[str] = field(default_factory=lambda: list(DEFAULT_REGIONS))
    """Regions where the runner job and Vertex AI jobs live (`regions`)."""
    regions_defaulted: bool = False
    """No `regions` key was given: only DEFAULT_REGIONS are watched (the CLI says so once)."""
    runner_job: str = "vertex-ai-launcher"
    """Cloud Run job that runs the W&B Launch agent (`[runner] job`)."""
    runner_limit: int = 5
    """How many of the newest executions to show (`[runner] limit`)."""
    runner_region: str | None = None
    """Region where the runner job is deployed, which `launch` runs (`[runner] region`; default the first of `regions`)."""
    builds_recent: int = 4
    """How many finished builds to show (`[builds] recent`)."""
    builds_queued_warn_s: float = 600.0
    """`check` warns about a build queued longer than this (`[builds] queued_warn_s`)."""
    builds_failure_severity: str = "warning"
    """What `check` makes of a build that FAILED or TIMED OUT since the previous check: warning, critical
    or ignore (`[builds] failure_severity`)."""
    vertex_limit: int = 10
    """How many of the newest Vertex AI custom jobs to show (`[vertex] limit`)."""
    vertex_start_timeout_s: float = 1800.0
    """The launch agent's start timeout: `check` warns about a Vertex AI job QUEUED or PENDING for
    longer (`[vertex] start_timeout_s`)."""
    wandb_entity: str | None = None
    """W&B entity (`[wandb] entity`, else WANDB_ENTITY)."""
    wandb_project: str | None = None
    """W&B project (`[wandb] project`, else WANDB_PROJECT)."""
    wandb_api_key: str | None = None
    """W&B API key (WANDB_API_KEY only: secrets stay out of config files)."""
    wandb_completed_limit: int = 10
    """How many finished W&B runs to show (`[wandb] completed_limit`)."""
    wandb_heartbeat_warn_s: float = 600.0
    """`check` warns about a running W&B run silent for longer (`[wandb] heartbeat_warn_s`)."""
    deadlines: dict[str, float] = field(default_factory=lambda: {s: DEFAULT_DEADLINE_S for s in SOURCES})
    """Seconds each source's worker may take before it is killed (`[deadlines] SOURCE`)."""
    watch_interval: float = 30.0
    """Seconds between refreshes of `watch` (`[watch] interval`)."""
    watch_heartbeat: float = 60.0
    """Seconds of silence after which `watch` prints a heartbeat (`[watch] heartbeat`)."""
    retention_days: float = 30.0
    """Terminal facts older than this are pruned from the state store (`[state] retention_days`)."""
    check_first_window_s: float = 3600.0
    """On the first check of a state directory, failures that ended longer ago than this are recorded
    as seen, not paged (`[check] first_window_s`)."""
    path: str | None = None
    """The file this came from (for messages), or None."""

    def job_region(self) -> str:
        """Where the runner job is deployed: `[runner] region`, else the first of `regions`."""
        return self.runner_region or self.regions[0]


def _xdg_base(env: Mapping[str, str], variable: str, fallback: str) -> Path:
    """$variable when it is an absolute path, else ~/fallback.

    XDG Base Directory spec: "If an implementation encounters a relative path in any of these
    variables it should consider the path invalid and ignore it."
    """
    value = env.get(variable) or ""
    if value and Path(value).is_absolute():
        return Path(value)
    return Path(env.get("HOME", "~")).expanduser() / fallback


def default_config_path(env: Mapping[str, str]) -> Path:
    """$ARRCTL_CONFIG, else $XDG_CONFIG_HOME/arrctl/config.toml, else ~/.config/arrctl/config.toml."""
    if env.get("ARRCTL_CONFIG"):
        return Path(env["ARRCTL_CONFIG"])
    return _xdg_base(env, "XDG_CONFIG_HOME", ".config") / "arrctl" / "config.toml"


def default_state_dir(env: Mapping[str, str]) -> Path:
    """$ARRCTL_STATE_DIR, else $XDG_STATE_HOME/arrctl (if absolute), else ~/.local/state/arrctl."""
    if env.get("ARRCTL_STATE_DIR"):
        return Path(env["ARRCTL_STATE_DIR"])
    return _xdg_base(env, "XDG_STATE_HOME", ".local/state") / "arrctl"


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise TypeError("a non-empty string")
    return v.strip()


def _pos_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise TypeError("a whole number of at least 1")
    return v


def _pos_float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= MAX_SECONDS:
        raise TypeError(f"a number of seconds greater than 0 and at most {MAX_SECONDS}")
    return float(v)


def _deadline(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not MIN_DEADLINE_S <= v <= MAX_DEADLINE_S:
        raise TypeError(f"a number of seconds from {MIN_DEADLINE_S:g} to {MAX_DEADLINE_S:g} (as --deadline)")
    return float(v)


def _days(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 3650:
        raise TypeError("a number of days greater than 0 and at most 3650")
    return float(v)


def _window(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 365 * 86400:
        raise TypeError("a number of seconds from 0 to 31536000 (a year)")
    return float(v)


BUILD_SEVERITIES = ("warning", "critical", "ignore")


def _severity(v: Any) -> str:
    if not isinstance(v, str) or v.strip().lower() not in BUILD_SEVERITIES:
        raise TypeError("one of " + ", ".join(f'"{s}"' for s in BUILD_SEVERITIES))
    return v.strip().lower()


def _regions(v: Any) -> list[str]:
    if not isinstance(v, list) or not v or not all(isinstance(r, str) and r.strip() for r in v):
        raise TypeError('a non-empty list of region names, e.g. ["us-central1", "europe-west2"]')
    return [r.strip() for r in v]


# (table, key) -> (Config field, validator)
_KEYS: dict[tuple[str, str], tuple[str, Callable[[Any], Any]]] = {
    ("", "project"): ("project", _str),
    ("", "regions"): ("regions", _regions),
    ("runner", "job"): ("runner_job", _str),
    ("runner", "limit"): ("runner_limit", _pos_int),
    ("runner", "region"): ("runner_region", _str),
    ("builds", "recent"): ("builds_recent", _pos_int),
    ("builds", "queued_warn_s"): ("builds_queued_warn_s", _pos_float),
    ("builds", "failure_severity"): ("builds_failure_severity", _severity),
    ("vertex", "limit"): ("vertex_limit", _pos_int),
    ("vertex", "start_timeout_s"): ("vertex_start_timeout_s", _pos_float),
    ("wandb", "entity"): ("wandb_entity", _str),
    ("wandb", "project"): ("wandb_project", _str),
    ("wandb", "completed_limit"): ("wandb_completed_limit", _pos_int),
    ("wandb", "heartbeat_warn_s"): ("wandb_heartbeat_warn_s", _pos_float),
    ("watch", "interval"): ("watch_interval", _pos_float),
    ("watch", "heartbeat"): ("watch_heartbeat", _pos_float),
    ("state", "retention_days"): ("retention_days", _days),
    ("check", "first_window_s"): ("check_first_window_s", _window),
}
_TABLES = {"runner", "builds", "vertex", "wandb", "deadlines", "watch", "state", "check"}


def parse_config(data: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Validate parsed TOML into Config keyword arguments; ConfigError names file and key."""
    values: dict[str, Any] = {}
    deadlines = {s: DEFAULT_DEADLINE_S for s in SOURCES}
    for top_key, top_value in data.items():
        if isinstance(top_value, dict):
            if top_key not in _TABLES:
                raise ConfigError(f"{path}: unknown table [{top_key}] (expected one of: {', '.join(sorted(_TABLES))})")
            for key, value in top_value.items():
                if top_key == "deadlines":
                    if key not in SOURCES:
                        raise ConfigError(f"{path}: [deadlines] {key}: unknown source (expected one of: {', '.join(SOURCES)})")
                    deadlines[key] = _validate(path, f"[deadlines] {key}", _deadline, value)
                    continue
                if (top_key, key) not in _KEYS:
                    known = sorted(k for t, k in _KEYS if t == top_key)
                    raise ConfigError(f"{path}: [{top_key}] {key}: unknown key (expected one of: {', '.join(known)})")
                name, check = _KEYS[(top_key, key)]
                values[name] = _validate(path, f"[{top_key}] {key}", check, value)
        else:
            if ("", top_key) not in _KEYS:
                raise ConfigError(f"{path}: {top_key}: unknown key (expected project, regions, or a table such as [runner])")
            name, check = _KEYS[("", top_key)]
            values[name] = _validate(path, top_key, check, top_value)
    values["deadlines"] = deadlines
    return values


def _validate(path: str, where: str, check: Callable[[Any], Any], value: Any) -> Any:
    try:
        return check(value)
    except TypeError as exc:
        raise ConfigError(f"{path}: {where}: expected {exc}, got {toml_value(value)}") from None


def toml_value(value: Any) -> str:
    """A parsed TOML value written back as TOML (true, "text", [1, 2], {a = 1}), for messages."""
    import datetime as _dt
    import json
    import math

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string has JSON's escapes
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _toml_key(key: str) -> str:
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def load_config(path: Path | None, env: Mapping[str, str], *, explicit: bool) -> Config:
    """Read the TOML file (a missing default file is fine) and fill gaps from the environment."""
    values: dict[str, Any] = {}
    shown = str(path) if path else "(no config file)"
    if path is not None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            if explicit:
                raise ConfigError(f"{path}: no such config file (create it, or drop --config/ARRCTL_CONFIG)") from None
            raw = None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
        if raw is not None:
            try:
                data = tomllib.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise ConfigError(f"{path}: not UTF-8 text; expected a TOML file") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: invalid TOML: {exc}") from None
            values = parse_config(data, shown)
    fill = {"project": "GOOGLE_CLOUD_PROJECT", "wandb_entity": "WANDB_ENTITY", "wandb_project": "WANDB_PROJECT"}
    for name, var in fill.items():
        if not values.get(name) and env.get(var, "").strip():
            values[name] = env[var].strip()
    if env.get("WANDB_API_KEY", "").strip():
        values["wandb_api_key"] = env["WANDB_API_KEY"].strip()
    if "regions" not in values:
        values["regions_defaulted"] = True
    return Config(path=shown if path else None, **values)


def require_project(config: Config) -> str:
    """The project id, or a ConfigError telling how to set it."""
    if not config.project:
        where = config.path or "the config file"
        raise ConfigError(
            f"{where}: project: no Google Cloud project configured "
            "(set `project = \"...\"` or GOOGLE_CLOUD_PROJECT, or try --demo)"
        )
    return config.project
