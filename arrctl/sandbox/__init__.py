"""The embedded fake cloud: demo constants and `Sandbox`, which runs it in its own process.

Importing this package is cheap on purpose (no Google or W&B library, no server code): the
supervisor starts the sandbox before it forks its workers.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from typing import IO, Any, Mapping, Sequence

DEMO_PROJECT = "arr-demo"
DEMO_PROJECT_NUMBER = "123456789012"  # Vertex and Build names carry the number, not the id
DEMO_REGIONS: tuple[str, ...] = (
    "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2",
    "us-west3", "us-west4", "northamerica-northeast1", "southamerica-east1", "europe-west1",
    "europe-west2", "europe-west3", "europe-west4", "asia-east1", "asia-northeast1",
    "asia-southeast1",
)
DEMO_JOB = "vertex-ai-launcher"
DEMO_WANDB_ENTITY = "arr-demo"
DEMO_WANDB_PROJECT = "arr-coc-0-1"
DEMO_WANDB_API_KEY = "demo" + "0" * 36  # W&B wants a 40-character key

START_TIMEOUT_S = 10.0
STOP_GRACE_S = 0.5


def demo_config_toml() -> str:
    """The arrctl config file that points at the sandbox's project, regions, job and W&B."""
    regions = ",\n".join(f'    "{region}"' for region in DEMO_REGIONS)
    return (
        "# arrctl configuration for the embedded fake cloud (arrctl sandbox serve / --demo)\n"
        f'project = "{DEMO_PROJECT}"\n'
        f"regions = [\n{regions},\n]\n"
        "\n[runner]\n"
        f'job = "{DEMO_JOB}"\n'
        "\n[wandb]\n"
        f'entity = "{DEMO_WANDB_ENTITY}"\n'
        f'project = "{DEMO_WANDB_PROJECT}"\n'
    )


def endpoint_env(url: str) -> dict[str, str]:
    """The environment that points arrctl (and the client libraries) at a sandbox URL."""
    return {
        "ARRCTL_GCP_ENDPOINT": url,
        "WANDB_BASE_URL": url,
        "WANDB_API_KEY": DEMO_WANDB_API_KEY,
        "GOOGLE_CLOUD_PROJECT": DEMO_PROJECT,
        "WANDB_ENTITY": DEMO_WANDB_ENTITY,
        "WANDB_PROJECT": DEMO_WANDB_PROJECT,
    }


class SandboxError(RuntimeError):
    """The sandbox process could not be started."""


class Sandbox:
    """The fake cloud in a child process, bound to 127.0.0.1 on a free port.

    The child dies with the thread that started it (PR_SET_PDEATHSIG), so start it from the
    main thread or from a thread that outlives it.
    """

    def __init__(self, scenario: str = "default", faults: Sequence[str] = (), *,
                 read_env: bool = True, environ: Mapping[str, str] | None = None,
                 start_timeout: float = START_TIMEOUT_S) -> None:
        from arrctl.sandbox.faults import faults_from_env, parse_faults

        environ = os.environ if environ is None else environ
        specs = (faults_from_env(environ) if read_env else []) + list(faults)
        self.faults = [fault.spec() for fault in parse_faults(specs)]  # ValueError: bad spec
        self.scenario = scenario
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in_s: float | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def gcp_endpoint(self) -> str:
        """Base URL of the Google APIs."""
        return f"http://127.0.0.1:{self._port()}"

    @property
    def wandb_base_url(self) -> str:
        """Base URL of W&B (the same server)."""
        return self.gcp_endpoint

    @property
    def pid(self) -> int | None:
        """The sandbox process id while it runs."""
        return self.process.pid if self.process else None

    def _port(self) -> int:
        """The port, once started."""
        if self.port is None:
            raise SandboxError("the sandbox is not started")
        return self.port

    def env(self) -> dict[str, str]:
        """Environment variables that point arrctl and the client libraries at this sandbox."""
        return endpoint_env(self.gcp_endpoint)

    def start(self) -> "Sandbox":
        """Start the process; return once it listens (SandboxError after start_timeout)."""
        from arrctl.sandbox.scenario import scenario_dir

        if self.process is not None:
            return self
        scenario_dir(self.scenario)  # ValueError now rather than a dead child later
        began = time.monotonic()
        command = [sys.executable, "-m", "arrctl.sandbox", "child",
                   "--parent-pid", str(os.getpid()), "--scenario", self.scenario]
        for spec in self.faults:
            command += ["--fault", spec]
        env = {k: v for k, v in os.environ.items() if k != "ARRCTL_SANDBOX_FAULTS"}
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr,
            env=env, close_fds=True)
        try:
            self.port = self._read_port(began + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - began
        return self

    def _read_port(self, deadline: float) -> int:
        """The port from the child's first stdout line, waiting no later than deadline."""
        assert self.process is not None and self.process.stdout is not None
        stream = self.process.stdout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stream, selectors.EVENT_READ)
            while b"\n" not in buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SandboxError(
                        f"the sandbox did not start within {self.start_timeout:g} s"
                        + self._stderr_tail())
                if not selector.select(left):
                    continue
                chunk = os.read(stream.fileno(), 256)
                if not chunk:
                    self.process.wait(timeout=1)
                    raise SandboxError(
                        f"the sandbox exited with status {self.process.returncode} at start"
                        + self._stderr_tail())
                buffer += chunk
        stream.close()  # the child sends stdout to /dev/null after this line
        match = re.match(rb"(\d+)\n", buffer)
        if not match:
            raise SandboxError(f"the sandbox said {buffer[:80]!r} instead of its port")
        return int(match.group(1))

    def _stderr_tail(self) -> str:
        """The last line the child wrote on stderr, for the error message."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return f": {lines[-1]}" if lines else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a short grace; always reaped; safe to call twice."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                try:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None and not process.stdout.closed:
                process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def stats(self, timeout: float = 5.0) -> dict[str, Any]:
        """The server's request counters (GET /_sandbox/stats)."""
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.gcp_endpoint}/_sandbox/stats",
                                    timeout=timeout) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
