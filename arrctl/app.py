"""The wiring of one command: what the global options decided, and the session they open.

A session is the configuration (the user's file and environment, or the demo's), the store and
the endpoints, with the embedded fake cloud started for --demo: the one place of arrctl besides
the command line that knows both the core and the sandbox.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from arrctl.config import Config
from arrctl.output import say

DEMO_FIRST_WINDOW_S = 12 * 3600.0


def demo_config() -> Config:
    """The configuration `--demo` uses: everything the sandbox serves, nothing from the user."""
    from arrctl import sandbox

    return Config(
        project=sandbox.DEMO_PROJECT,
        regions=list(sandbox.DEMO_REGIONS),
        runner_job=sandbox.DEMO_JOB,
        wandb_entity=sandbox.DEMO_WANDB_ENTITY,
        wandb_project=sandbox.DEMO_WANDB_PROJECT,
        wandb_api_key=sandbox.DEMO_WANDB_API_KEY,
        # the scenario's failures ended 3 h to 36 h ago: a 12 h window lets the demo's first check
        # page the recent ones and record the older ones as seen, so both behaviours show
        check_first_window_s=DEMO_FIRST_WINDOW_S,
        path="(demo)",
    )


@dataclass
class App:
    """What the global options decided; commands build the rest lazily (imports cost)."""

    config_path: Path | None
    state_dir: str | None
    demo: bool
    color: bool
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    grace_s: float = 0.5

    def warn(self, message: str) -> None:
        """A one-line diagnostic on stderr."""
        say(f"arrctl: warning: {message}")

    def load_config(self) -> Any:
        """The configuration (demo, file + environment); ConfigError on a bad one."""
        from arrctl.config import default_config_path, load_config

        from arrctl.sanitize import add_known_secret

        if self.demo:
            config = demo_config()
        else:
            explicit = self.config_path is not None or bool(self.env.get("ARRCTL_CONFIG"))
            path = self.config_path or default_config_path(self.env)
            config = load_config(path, self.env, explicit=explicit)
            if config.regions_defaulted:  # once per command: the config is loaded once
                where = str(path) if path.exists() else f"no config file ({path})"
                self.warn(f"{where}: no `regions` key, so only {', '.join(config.regions)} is watched "
                          '(set e.g. regions = ["us-central1", "europe-west2"])')
        add_known_secret(config.wandb_api_key)  # masked wherever it would show, in any output
        return config

    def state_path(self) -> Path:
        """The state directory (a demo/ folder inside it for --demo); ConfigError for an empty --state-dir."""
        from arrctl.config import ConfigError, default_state_dir

        if self.state_dir == "":  # Path("") would silently be the current directory
            raise ConfigError("--state-dir: expected a directory path, got an empty string")
        base = Path(self.state_dir) if self.state_dir is not None else default_state_dir(self.env)
        return base / "demo" if self.demo else base

    @contextmanager
    def session(self, *, deadline_s: float | None = None, receiver: Any = None) -> Iterator[Any]:
        """Config, store, endpoints (and the sandbox for --demo) for one command's lifetime."""
        from arrctl.refresh import Endpoints, Refresher, memory_scope
        from arrctl.store import Store

        with ExitStack() as stack:
            # Reading the config (a FIFO blocks until a writer comes), starting the sandbox and
            # waiting for another process's lock on the store block outside any loop: a signal
            # there ends the command at once (SPEC: within 1 s, 130/143).
            with receiver.interruptible() if receiver is not None else nullcontext():
                config = self.load_config()
                if self.demo:
                    from arrctl.sandbox import Sandbox

                    from arrctl.config import ConfigError

                    scenario = self.env.get("ARRCTL_SANDBOX_SCENARIO", "default")
                    try:  # the sandbox reads ARRCTL_SANDBOX_FAULTS itself
                        sandbox = stack.enter_context(Sandbox(scenario=scenario, environ=self.env))
                    except ValueError as exc:  # a bad ARRCTL_SANDBOX_FAULTS or ARRCTL_SANDBOX_SCENARIO
                        raise ConfigError(f"--demo: ARRCTL_SANDBOX_FAULTS/ARRCTL_SANDBOX_SCENARIO: {exc}") from None
                    except RuntimeError as exc:
                        raise ConfigError(f"--demo: the embedded fake cloud did not start: {exc}") from None
                    endpoints = Endpoints(gcp=sandbox.gcp_endpoint, wandb=sandbox.wandb_base_url,
                                          memory=f"demo:{scenario}")
                else:
                    endpoints = Endpoints(gcp=self.env.get("ARRCTL_GCP_ENDPOINT") or None,
                                          wandb=self.env.get("WANDB_BASE_URL") or None)
                # later waits on the store's lock (each refresh's save) look for a recorded signal
                store = Store(self.state_path(), warn=self.warn, scope=memory_scope(config, endpoints),
                              interrupted=receiver.check if receiver is not None else None)
                stack.callback(store.close)
                try:
                    store.prune(config.retention_days)
                except Exception as exc:  # noqa: BLE001 — pruning is housekeeping, never fatal
                    self.warn(f"could not prune state: {exc}")
            yield Refresher(config, store, endpoints, grace_s=self.grace_s, receiver=receiver,
                            deadline_s=deadline_s, warn=self.warn)
