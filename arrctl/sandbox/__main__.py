"""`python -m arrctl.sandbox child|serve ...`: the sandbox process (child of `Sandbox`) or serve."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from arrctl.lifeline import die_with_parent


def run_child(parent_pid: int, scenario: str, faults: list[str]) -> int:
    """Serve for the parent: first stdout line is the port, then stdout goes to /dev/null."""
    die_with_parent(parent_pid, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the supervisor, which stops us
    from arrctl.sandbox.faults import parse_faults
    from arrctl.sandbox.server import SandboxServer

    server = SandboxServer(scenario, parse_faults(faults))
    sys.stdout.write(f"{server.port}\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # the parent closed its end; a stray print must not kill us
    server.serve_forever()  # until SIGTERM (default action) or SIGKILL
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse argv and run the child or the foreground server."""
    parser = argparse.ArgumentParser(prog="python -m arrctl.sandbox")
    parser.add_argument("mode", choices=("child", "serve"))
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--fault", action="append", default=[])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        if args.mode == "child":
            return run_child(args.parent_pid or os.getppid(), args.scenario, args.fault)
        from arrctl.sandbox.server import serve

        return serve(args.port, args.scenario, args.fault)
    except (ValueError, RuntimeError) as exc:  # bad fault, unknown scenario, busy port
        print(f"arrctl sandbox: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
