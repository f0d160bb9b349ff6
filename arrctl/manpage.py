"""Generate man/arrctl.1 (roff, man(7) macros) from the click definitions, so they never drift."""

from __future__ import annotations

import sys
from typing import Iterator

import click

from arrctl import __version__
from arrctl.cli import cli

DATE = "2026-11-22"
HELP_NAMES = ["-h", "--help"]  # as the CLI sets them for every command

EXIT_STATUS = [
    ("get, watch, explain, launch", [
        ("0", "success: every source answered (get), the watch ended by --cycles, the analysis ran (explain), "
              "the job made it (launch)."),
        ("1", "a source failed or timed out (get); the launch failed."),
        ("2", "usage or configuration error."),
        ("124", "launch: no conclusive signal before --timeout."),
        ("130, 143", "stopped by SIGINT or SIGTERM."),
    ]),
    ("check (Monitoring Plugins convention)", [
        ("0", "OK."), ("1", "WARNING: a source failed or timed out, a stale W&B heartbeat, a build queued too long."),
        ("2", "CRITICAL: a failure first seen since the previous check."),
        ("3", "UNKNOWN: configuration, credentials or state make a judgement impossible, or the report "
              "could not be delivered (nothing counts as reported then)."),
    ]),
]

ENVIRONMENT = [
    ("ARRCTL_CONFIG", "Config file, when --config is not given."),
    ("ARRCTL_STATE_DIR", "State directory, when --state-dir is not given."),
    ("XDG_CONFIG_HOME, XDG_STATE_HOME", "Base directories for the default config file and state directory."),
    ("ARRCTL_GCP_ENDPOINT", "Send every Google API call to http://HOST:PORT with anonymous credentials (emulators, tests)."),
    ("WANDB_BASE_URL", "Send every W&B call to this address."),
    ("GOOGLE_CLOUD_PROJECT", "Project, when the config file has none."),
    ("WANDB_ENTITY, WANDB_PROJECT", "W&B entity and project, when the config file has none."),
    ("WANDB_API_KEY", "W&B API key."),
    ("ARRCTL_SANDBOX_FAULTS", "Faults for the embedded fake cloud (--demo, sandbox serve), comma separated SERVICE:KIND[:ARG]."),
    ("ARRCTL_SANDBOX_SCENARIO", "Scenario of the embedded fake cloud for --demo (default: default)."),
    ("NO_COLOR", "Never colour the output."),
    ("ARRCTL_KILL_GRACE", "Seconds between SIGTERM and SIGKILL of a worker past its deadline (default 0.5)."),
    ("ARRCTL_DEBUG", "Show tracebacks of internal errors."),
]

FILES = [
    ("~/.config/arrctl/config.toml", "Configuration (TOML): project, regions, [runner] job, limit; [builds] recent, "
     "queued_warn_s; [vertex] limit; [wandb] entity, project, completed_limit, heartbeat_warn_s; "
     "[deadlines] SOURCE = seconds; [watch] interval, heartbeat; [state] retention_days; "
     "[check] first_window_s (the first check records failures that ended longer ago as seen, not paged; 3600)."),
    ("~/.local/state/arrctl/state.sqlite3", "Terminal-state memory, last good rows, what check reported (0600), "
     "each kept apart per project, runner job, W&B entity/project and endpoint. --demo keeps its own in demo/."),
]

EXAMPLES = [
    "arrctl --demo get",
    "arrctl get runner vertex --json | jq -c 'select(.status==\"FAILED\")'",
    "arrctl watch --interval 30 --heartbeat 60",
    "arrctl check --format prom --output /var/lib/node_exporter/textfile/arrctl.prom",
    "arrctl explain vertex-ai-launcher-x7k2p",
    "arrctl launch --timeout 180",
]


def esc(text: str) -> str:
    """Escape text for roff: backslashes, leading dots and quotes, hyphens in options."""
    text = text.replace("\\", "\\e")
    lines = []
    for line in text.splitlines() or [""]:
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def _flag(text: str) -> str:
    return esc(text).replace("-", "\\-")


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command, depth first, with its full name."""
    ctx = click.Context(group, help_option_names=HELP_NAMES)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield full, command
            yield from commands(command, full + " ")
        else:
            yield full, command


def _options(command: click.Command) -> list[str]:
    out = []
    ctx = click.Context(command, help_option_names=HELP_NAMES)
    for param in command.get_params(ctx):
        if isinstance(param, click.Option) and not param.hidden:
            record = param.get_help_record(ctx)
            if record:
                out += [".TP", f".B {_flag(record[0])}", esc(" ".join(record[1].split()))]
    return out


def _help_text(command: click.Command) -> list[str]:
    out: list[str] = []
    text = (command.help or "").replace("\b\n", "")
    first = True
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        lead = [] if first else [".PP"]  # no paragraph macro right after a heading
        first = False
        if lines[0].strip().startswith("Example"):
            out += lead + ["Examples:", ".RS", ".nf"] + [esc(line.strip()) for line in lines[1:]] + [".fi", ".RE"]
        else:
            out += lead + [esc(" ".join(paragraph.split()))]
    return out


def render() -> str:
    """The whole man page."""
    lines = [
        f'.TH ARRCTL 1 "{DATE}" "arrctl {__version__}" "User Commands"',
        ".SH NAME", "arrctl \\- monitor an ML training pipeline on Google Cloud and W&B without ever hanging",
        ".SH SYNOPSIS", ".B arrctl", "[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]",
        ".SH DESCRIPTION",
        esc("arrctl watches the Cloud Run job that runs the W&B Launch agent, Cloud Build, Vertex AI custom jobs "
            "and W&B runs. Each source is fetched by its own worker process, killed at its deadline, so a hung "
            "cloud call never hangs arrctl; a source that fails is shown from its last good rows with their age."),
        ".SH GLOBAL OPTIONS",
    ] + _options(cli) + [".SH COMMANDS"]
    for name, command in commands(cli):
        usage = " ".join(command.collect_usage_pieces(click.Context(command, help_option_names=HELP_NAMES)))
        lines.append(f".SS arrctl {esc(name)} {esc(usage)}".rstrip())
        lines += _help_text(command) + _options(command)
    lines.append(".SH EXIT STATUS")
    for n, (title, items) in enumerate(EXIT_STATUS):
        lines += ([".PP"] if n else []) + [esc(title) + ":"]
        for code, meaning in items:
            lines += [".TP", f".B {esc(code)}", esc(meaning)]
    lines.append(".SH ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        lines += [".TP", f".B {esc(name)}", esc(meaning)]
    lines.append(".SH FILES")
    for name, meaning in FILES:
        lines += [".TP", f".I {esc(name)}", esc(meaning)]
    lines += [".SH EXAMPLES", ".nf"] + [_flag(e) for e in EXAMPLES] + [".fi"]
    lines += [".SH SEE ALSO", "README.md in the source distribution."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
