"""Generate man/arrctl.1 (roff, man(7) macros) from the click definitions and the README, so they never drift.

The options and commands come from click; the config sample and the environment table are read
from README.md (the page says what the README says); records and check formats are written here
and tested against the code (tests/test_docs.py).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Iterator

import click

from arrctl import __version__
from arrctl.cli import cli

DATE = "2026-11-22"
HELP_NAMES = ["-h", "--help"]  # as the CLI sets them for every command

README = Path(__file__).resolve().parent.parent / "README.md"

EXIT_STATUS = [
    ("get, watch, explain, launch", [
        ("0", "success: every source answered (get), the watch ended by --cycles, the analysis ran (explain), "
              "the job made it (launch)."),
        ("1", "a source failed or timed out (get); the item was found nowhere or its logs could not be read "
              "(explain); the launch failed."),
        ("2", "usage or configuration error."),
        ("124", "launch: no conclusive signal before --timeout."),
        ("130, 143", "stopped by SIGINT or SIGTERM."),
    ]),
    ("check (Monitoring Plugins convention)", [
        ("0", "OK."), ("1", "WARNING: a source failed or timed out, a stale W&B heartbeat, a build queued or pending too long, "
                            "a build failed or timed out since the previous check ([builds] failure_severity)."),
        ("2", "CRITICAL: a failure first seen since the previous check (a build's too, with failure_severity = "
              "\"critical\")."),
        ("3", "UNKNOWN: configuration, credentials or state make a judgement impossible, or the report "
              "could not be delivered (nothing counts as reported then)."),
    ]),
]

FILES = [
    ("~/.config/arrctl/config.toml", "The configuration (see CONFIGURATION): --config, else $ARRCTL_CONFIG, else "
     "$XDG_CONFIG_HOME/arrctl/config.toml. A missing default file is fine (the environment fills in); a missing "
     "--config file is an error."),
    ("~/.local/state/arrctl/state.sqlite3", "The state store (SQLite, mode 0600, in a 0700 directory): what each "
     "FAILED/FINISHED item was found to say (its logs are read once), the last good rows of each source (shown, "
     "with their age, when a source fails), what check has reported, each kept apart per project, runner job, "
     "W&B entity/project and endpoint. Directory: --state-dir, else "
     "$ARRCTL_STATE_DIR, else $XDG_STATE_HOME/arrctl. Safe with several arrctl processes at once; a damaged file "
     "is renamed state.sqlite3.corrupt-TIME and rebuilt. --demo keeps its own in demo/ inside it."),
    ("man/arrctl.1", "This page, in the source tree: read it with man ./man/arrctl.1 (a wheel install puts it "
     "in share/man/man1)."),
]

FILTERS = (
    "get, watch and check take --status STATUS[,STATUS] (normalised statuses, any case), --region R[,R], "
    "--since DURATION (created or finished within 90s, 30m, 2h, 3d, 1h30m), --name GLOB (the id or the name; "
    "repeatable), and for W&B runs --user U[,U] and --tag T[,T]. They are applied after the fetch: the state "
    "store still learns every row. Different flags must all match, the values of one flag are alternatives, and "
    "a row without the field a flag asks about does not match it. Each table says how many rows it hid. watch "
    "shows a change when the row matches before or after it; check judges the rows shown only, and a failure a "
    "filter hid is not counted as reported. A bad value is one line naming the flag (exit 2; UNKNOWN, exit 3, "
    "for check)."
)
SHELL_COMPLETION = [
    'eval "$(_ARRCTL_COMPLETE=bash_source arrctl)"     # ~/.bashrc',
    'eval "$(_ARRCTL_COMPLETE=zsh_source arrctl)"      # ~/.zshrc',
    "_ARRCTL_COMPLETE=fish_source arrctl | source      # ~/.config/fish/completions/arrctl.fish",
]

# (record, what it is): `get --json`, `watch --json`; the keys are those of the README's records, tested against model.py
RECORDS = [
    ("row", '{"type":"row", "source", "id", "status", "raw_status", "region", "name", "created", "started", '
     '"finished", "duration_s", "message", "category", "url", "links", "extra":{...}}: one item of a source. '
     "status is one of QUEUED PENDING RUNNING SUCCEEDED FAILED CANCELLED TIMEOUT UNKNOWN; raw_status keeps the "
     "API's own word (JOB_STATE_RUNNING, WORKING, crashed, ...). message: the root error of a FAILED row (from its "
     "own logs where it has any), the success summary of a SUCCEEDED runner row (Completed: 5 jobs). category: "
     "the category of the root error of a FAILED or TIMEOUT row, else null. links: what the row is known to be "
     'part of, e.g. {"wandb_run": "abc123"}, {} when nothing is known.'),
    ("source", '{"type":"source", "source", "state":"ok|error|timeout", "rows", "took_s", "error", "stale_s"}: '
     "one per source after its rows (get), or when a source's state changes (watch, with ts). error is one line; "
     "stale_s is the age of rows shown from memory when this refresh failed, else null."),
    ("added, changed, removed", '{"type", "ts", "source", "id", "row":{...}, "changes":{"field":[old, new]}}: '
     "watch events. changes only on changed; row is the full new row, or the last known row on removed. A W&B "
     "run that moves from active to completed within one refresh is one changed event on source completed whose "
     'changes include "status" and "source": ["active", "completed"].'),
    ("heartbeat", '{"type":"heartbeat", "ts", "cycle", "sources":{"runner":"ok", ...}, "running"}: watch, after '
     "--heartbeat seconds without another line."),
    ("explain --json", '{"verdict":"failed|succeeded|unknown", "message", "category", "rule", "line", "jobs", '
     '"context":[...]}.'),
    ("launch --json", '{"result":"success|failure|timeout", "via", "message", "execution", "rule", "elapsed_s", '
     '"job":{"id", "name", "status", "raw_status", "region", "url"}|null}; --no-wait: {"result":"started", '
     '"execution"}.'),
]

CHECK_FORMATS = [
    ("nagios (default)", "The Monitoring Plugins convention: a first line ARRCTL STATE - summary | perfdata "
     "(perfdata label=value[UOM];warn;crit;min;max, space separated: new_failures, running, sources_ok, "
     "SOURCE_time), then one line per problem (SEVERITY: source id: message). Under 8 KB."),
    ("json", 'One object {"state":"OK|WARNING|CRITICAL|UNKNOWN", "code":0-3, "summary", "problems":[...], '
     '"sources":{...}}; each problem {"severity", "kind", "source", "id", "message", "category", "url"} '
     "(category null where the problem is not a failure); sources holds each source record without type and "
     "source."),
    ("prom", "Prometheus text exposition format, for node_exporter's textfile collector (write it with --output, "
     "atomically; no timestamps on samples): arrctl_source_up, arrctl_source_duration_seconds, "
     "arrctl_source_stale_seconds, arrctl_rows, arrctl_new_failures, arrctl_new_build_failures, "
     "arrctl_skipped_failures, arrctl_problems, "
     "arrctl_check_state, "
     "arrctl_check_timestamp_seconds."),
]

EXAMPLES = [
    "arrctl --demo get",
    "arrctl get runner vertex --json | jq -c 'select(.status==\"FAILED\")'",
    "arrctl get --status failed,timeout --since 2h -o wide",
    "arrctl get runner --status failed -o name | xargs -n1 arrctl explain",
    "arrctl watch --interval 30 --heartbeat 60",
    "arrctl watch --status failed --bell",
    "arrctl check --format prom --output /var/lib/node_exporter/textfile/arrctl.prom",
    "arrctl explain vertex-ai-launcher-x7k2p",
    "arrctl explain https://wandb.ai/ENTITY/PROJECT/runs/RUN_ID --json",
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


def _markdown(text: str) -> str:
    """A README phrase as plain text: no backticks, no emphasis, links as their text."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    return text.replace("`", "").replace("**", "").replace("\\|", "|")


def readme_section(title: str, readme: str) -> str:
    """The text of the README section `## title` (up to the next `## `)."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", readme, re.S | re.M)
    if found is None:
        raise LookupError(f"README.md has no section '## {title}'")
    return found.group(1)


def config_sample(readme: str) -> list[str]:
    """The config file of the README (its first TOML block)."""
    found = re.search(r"^```toml\n(.*?)^```", readme, re.S | re.M)
    if found is None:
        raise LookupError("README.md has no ```toml block")
    return found.group(1).rstrip("\n").splitlines()


def environment(readme: str) -> list[tuple[str, str]]:
    """(variables, effect) rows of the README's environment table."""
    rows = []
    for line in readme_section("Environment", readme).splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) == 2 and cells[0] not in ("variable",) and not set(cells[0]) <= set("-: "):
            rows.append((_markdown(cells[0]), _markdown(cells[1])))
    if not rows:
        raise LookupError("README.md's Environment section has no table")
    return rows


def render(readme_text: str | None = None) -> str:
    """The whole man page."""
    readme = readme_text if readme_text is not None else README.read_text(encoding="utf-8")
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
    lines += [".SH FILTERS", esc(FILTERS)]
    lines.append(".SH EXIT STATUS")
    for n, (title, items) in enumerate(EXIT_STATUS):
        lines += ([".PP"] if n else []) + [esc(title) + ":"]
        for code, meaning in items:
            lines += [".TP", f".B {esc(code)}", esc(meaning)]
    lines += [".SH RECORDS", esc("get --json and watch --json print NDJSON: one JSON object per line, nothing "
                                 "else on stdout. Times are RFC 3339 UTC strings ending in Z, durations are "
                                 "seconds, absent values are null; the keys are stable.")]
    for name, meaning in RECORDS:
        lines += [".TP", f".B {esc(name)}", esc(meaning)]
    lines += [".SH CHECK OUTPUT", esc("arrctl check --format FORMAT; the exit status and the state are the "
                                      "same (see EXIT STATUS).")]
    for name, meaning in CHECK_FORMATS:
        lines += [".TP", f".B {esc(name)}", esc(meaning)]
    lines += [".SH CONFIGURATION",
              esc("A TOML file (see FILES); GOOGLE_CLOUD_PROJECT, WANDB_ENTITY, WANDB_PROJECT and WANDB_API_KEY "
                  "fill what it leaves out. A bad file is one line naming the file, the key and what was expected "
                  "(exit 2; 3 for check). Without a regions key only us-central1 is watched (said once on stderr); "
                  "[deadlines] takes 0.1 to 3600 seconds, as --deadline does. The README's sample:"),
              ".PP", ".RS", ".nf"] + [esc(line) for line in config_sample(readme)] + [".fi", ".RE"]
    lines.append(".SH ENVIRONMENT")
    for name, meaning in environment(readme):
        lines += [".TP", f".B {esc(name)}", esc(meaning)]
    lines.append(".SH FILES")
    for name, meaning in FILES:
        lines += [".TP", f".I {esc(name)}", esc(meaning)]
    lines += [".SH SHELL COMPLETION",
              esc("Commands, options, SOURCE names, --status values, sandbox scenario names and the ids of the last "
                  "refresh (read from the state store, without network) complete on Tab once the shell loads "
                  "click's script:"), ".PP", ".RS", ".nf"] + [esc(line) for line in SHELL_COMPLETION] + [".fi", ".RE"]
    lines += [".SH EXAMPLES", ".nf"] + [_flag(e) for e in EXAMPLES] + [".fi"]
    lines += [".SH SEE ALSO", esc("README.md in the source distribution (set-up, IAM permissions, recipes "
                                  "with jq, cron and monitoring, troubleshooting).")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
