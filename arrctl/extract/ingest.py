"""Log text and Cloud Logging entries → structured lines: text without prefixes, and a level.

Real logs reach us wrapped in prefixes that carry no meaning for the rules, often several deep:
a Logs Explorer timestamp, then `[rank3]:`, then a Python logging header, then the message. The
normaliser strips them repeatedly and remembers the level any of them named (ERROR, W, E1203…),
so a rule sees `RuntimeError: CUDA out of memory` whatever printed it.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from arrctl.extract.patterns import ASCII, first_chars
from arrctl.sanitize import strip_escapes

# Rules look at this many characters of a line: messages are cut to 300 anyway, and it keeps a
# 100 KB line from costing more than a normal one.
MATCH_LIMIT = 8192

LEVELS = {
    "E": "ERROR", "ERROR": "ERROR", "ERR": "ERROR", "ERRO": "ERROR",
    "CRITICAL": "ERROR", "CRIT": "ERROR", "EMERGENCY": "ERROR", "ALERT": "ERROR",  # (a program may go on)
    # a logger's last word before the program exits (Go's log.Fatal, glog's F, logrus' level=fatal)
    "FATAL": "FATAL", "F": "FATAL",
    "FATA": "FATAL", "PANI": "FATAL", "FTL": "FATAL", "PNC": "FATAL", "WRN": "WARNING", "INF": "INFO",
    "DBG": "DEBUG", "TRC": "DEBUG", "PANIC": "FATAL", "DEBU": "DEBUG", "TRAC": "DEBUG",
    "W": "WARNING", "WARN": "WARNING", "WARNING": "WARNING",
    "I": "INFO", "INFO": "INFO", "NOTICE": "INFO", "D": "DEBUG", "DEBUG": "DEBUG",
    "TRACE": "DEBUG", "V": "DEBUG", "BASIC": "INFO", "DETAILED": "INFO",
}

_TS = (r"\d{4}-\d\d-\d\d(?:[T ]|, )\d\d:\d\d:\d\d(?:[.,]\d+)?(?: ?(?:Z|UTC|[+-]\d\d:?\d\d|[A-Z]{3,4}))?")
_LEVEL_WORD = r"(?P<lvl>CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|DEBUG|NOTICE|TRACE)"
# Each alternative is one prefix; the normaliser applies them until none matches.
_PREFIXES: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    # `gh run view --log`: the job's and the step's names, tab-separated, before the time
    r"^[^\t]{1,100}\t[^\t]{1,100}\t(?=\d{4}-\d\d-\d\dT)",
    # Logs Explorer / kubectl logs --timestamps / docker logs -t / plain files; a time alone on its
    # line (CloudWatch's console copied as text puts each event's time on a line of its own)
    r"^(?:" + _TS + r")(?:[ \t]|: |$)",
    # TensorFlow / XLA C++ logging after its time: `E tensorflow/compiler/xla/x.cc:11] `
    r"^(?:: )?(?P<lvl>[EWIF]) [\w./-]+:\d+\] ",  # (Colab's copy may keep the `: ` after a time it dropped)
    # logrus' text formatter in its coloured layout, which kaniko always prints: the level cut to
    # four letters and the seconds since start (`INFO[0031] `, `ERRO[0002] `, `FATA[0000] `)
    r"^(?P<lvl>INFO|WARN|ERRO|FATA|PANI|DEBU|TRAC)\[\d{4,}\] ",
    # skaffold's and stern's pod and container names before such a line (`kaniko-k8nhg kaniko INFO[0001] `)
    r"^[a-z0-9][\w.-]* [a-z0-9][\w.-]* (?=(?:INFO|WARN|ERRO|FATA|PANI|DEBU|TRAC)\[\d{4,}\] )",
    # Rust's env_logger: `[2024-01-01T00:00:00Z ERROR mycrate::module] `
    r"^\[(?:" + _TS + r") +(?P<lvl>ERROR|WARN|INFO|DEBUG|TRACE) +[\w:.-]*\] ",
    r"^\[(?:" + _TS + r")[^\]]{0,20}\][ \t]?",
    # a node's name before the time (FunASR/ESPnet: `[trainer-node-0] 2023-08-16 17:38:19,309 (trainer:334)
    # INFO: ...`), and their logging format's `(module:line) LEVEL: ` after it
    r"^\[[\w.-]+\] (?=" + _TS + r")",
    r"^\([\w.]+:\d+\) " + _LEVEL_WORD + r": ",
    # Ruby's Logger: `E, [2024-01-01T00:00:00.000000 #1234] ERROR -- : `
    r"^[DIWEFA], \[[^\]]{10,40}\] +(?P<lvl>[A-Z]+) -- [^:]{0,40}: ",
    # a time of day alone (SD.Next's rich handler glues its microseconds with `-`: `15:43:01-330858 `;
    # Jenkins' timestamper pads it with two spaces: `11:50:40  │ Error: ...`)
    r"^\d\d:\d\d:\d\d(?:[.,-]\d+)?(?:[ \t](?=\S)|  )",
    # Go's standard `log` package (LstdFlags): `2020/07/07 12:53:18 `, microseconds optional;
    # AWS CodeBuild's agent before it: `[Container] 2024/10/11 07:43:01.063175 `
    r"^(?:\[Container\] )?\d{4}/\d\d/\d\d \d\d:\d\d:\d\d(?:\.\d+)? ",
    # rich's logging handler: `[08/06/24 17:14:56] `, and its default `[07:32:29] `
    r"^\[\d\d/\d\d/\d\d \d\d:\d\d:\d\d\]\s+", r"^\[\d\d:\d\d:\d\d\]\s+",
    # Logs Explorer's severity column: `E 2024-...` or `ERROR 2024-...` before the time
    r"^(?P<lvl>[EWIDF]|ERROR|WARNING|INFO|DEBUG|CRITICAL|DEFAULT)[ \t]+(?=\d{4}-\d\d-\d\d)",
    # glog / absl: `E1203 10:00:00.123456 12345 file.cc:123] `
    r"^(?P<lvl>[EWIF])\d{4} \d\d:\d\d:\d\d(?:\.\d+)?\s+\d+\s+[\w./-]+:\d+\] ?",
    # a logging format that glues the level's letter to the time: `E2022-04-24 18:17:53,278] `
    r"^(?P<lvl>[DIWEFC])" + _TS + r"\] ",
    # protobuf's C++ log handler: `[libprotobuf ERROR google/protobuf/text_format.cc:335] `
    r"^\[libprotobuf (?P<lvl>ERROR|WARNING|INFO|FATAL) [^\]]+\] ",
    # c10 / torch: `[E ProcessGroupNCCL.cpp:1234] `, `[W socket.cpp:601] `, `[E1203 10:00:00 ...]`
    r"^\[(?P<lvl>[EWIF])(?:\d{3,4}[^\]]*| [\w./-]+:\d+[^\]]*)\] ?",
    # torchrun / accelerate / deepspeed rank prefixes: `[rank0]:`, `[default3]:`, `[1,0]<stderr>:`
    r"^\[(?:rank|default|local_rank)?\d+\]:[ \t]?",
    r"^\[\d+,\d+\]<std(?:out|err)>:",
    r"^(?:rank|Rank) ?\d+: ",
    # syslog priority `<3>`; a process and its pid before a level: `WSL (2912) ERROR: `
    r"^<\d>",
    # a terminal's echo of Ctrl-C before the next line the program printed
    r"^\^C(?=\S)",
    # journalctl's short(-precise) form: `Feb 25 22:47:13.367776 host unit[1922]: `
    r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? [\w.-]+ [\w./@-]+(?:\[\d+\])?: ",
    r"^[\w.-]+ \(\d+\) (?P<lvl>ERROR|WARNING|INFO|DEBUG): ",
    # Ray's autoscaler and raylet: `(autoscaler +34s) `, `(raylet) `
    r"^\((?:autoscaler|raylet|scheduler|monitor|gcs_server)[^)]{0,20}\) ",
    # Ray: `(RayTrainWorker pid=1234) `, `(pid=1234, ip=10.0.0.1) `; its log monitor names a system
    # process's file instead of a pid (`(pid=gcs_server) `, `(pid=runtime_env, ip=10.0.0.1) `)
    r"^\((?:[\w.-]+ )?pid=(?:\d+|[a-z_]+)(?:, ip=[\d.]+)?\) ",
    # Cloud Build `Step #0 - "build": ` and BuildKit's plain progress `#12 0.345 `
    r"^Step #\d+(?: - \"[^\"]*\")?: ?",
    r"^#\d+ (?:\d+\.\d+ )?",
    # BuildKit's error summary repeats the step's output after its time: `0.238 `, `13181.5 `
    r"^\d{1,6}\.\d{1,3} ",
    # SkyPilot: `I 05-13 20:14:34 instance.py:991] `; vLLM: `ERROR 07-24 14:07:40 worker.py:226] `,
    # newer vLLM: `ERROR 04-17 15:10:09 [engine.py:448] `
    r"^(?P<lvl>[DIWEF]|DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? "
    r"(?:[\w./-]+:\d+\]|\[[\w./-]+:\d+\]) ",
    # subprocess output relayed by a launcher
    r"^(?:stdout|stderr): ?",
    # `[MainThread] [W] [google.auth._default] `
    r"^\[[\w-]+\] \[(?P<lvl>[DIWEF])\] (?:\[[\w.]+\] )?",
    # Apache Beam relaying a Dataflow job's messages: `INFO[dataflow_runner.py]: <time>: ` and
    # the message's own importance `JOB_MESSAGE_ERROR: ` (BASIC, DETAILED, DEBUG, WARNING, ERROR)
    r"^" + _LEVEL_WORD + r"\[[\w.]+\]: ",
    r"^JOB_MESSAGE_(?P<lvl>ERROR|WARNING|BASIC|DETAILED|DEBUG): ",
    # `torch._dynamo.convert_frame: [WARNING] `
    r"^[\w.]+: \[" + _LEVEL_WORD + r"\] ",
    # `[google.auth._default][WARNING] - `
    r"^\[[\w.]+\]\[" + _LEVEL_WORD + r"\] - ",
    # docker compose `svc_1  | `
    r"^[a-z][\w.-]{0,40}(?:[-_]\d+\s+|\s{2,})\| ?",  # (one space: the line's own indentation stays)
    # Airflow relaying a child's output at INFO: the BashOperator's `{subprocess.py:93} INFO - `,
    # KubernetesPodOperator's `{pod_manager.py:381} INFO - `: the level is the relay's, not the line's
    r"^\{(?:subprocess|pod_manager|pod_launcher|docker|process_utils)\.py:\d+\} (?:INFO|WARNING) - ",
    # Airflow: `{taskinstance.py:1851} ERROR - `
    r"^\{[\w.]+:\d+\} " + _LEVEL_WORD + r" - ",
    # Prefect: `| ERROR   | Task run 'x' - `, `| ERROR   | prefect.flow_runs - `
    r"^\| " + _LEVEL_WORD + r"\s*\| (?:[\w.]+ - |Task run '[^']*' - )?",
    # a console's line-number gutter `  | `, buildpacks' phase `[builder] `
    r"^\|\s+(?=\S)", r"^\d{1,6}\s*\| (?=\S)",
    r"^\[(?:builder|detector|exporter|analyzer|restorer|extender)\] ",
    r"^Unhandled exception\. ",
    # Python logging: `ERROR:root:`, `ERROR:__main__:`
    r"^" + _LEVEL_WORD + r":[\w.]+:",
    # `ERROR   MainThread:123 [file.py:fn():45] ` (W&B's debug log), `- ERROR - `, `ERROR - `
    r"^" + _LEVEL_WORD + r"\s+\w+:\d+ \[[^\]]*\] ",
    r"^(?:[\w.]+ )?- " + _LEVEL_WORD + r" - ",
    # the logging cookbook's `%(asctime)s - %(name)s - %(levelname)s - %(message)s`, its time gone
    r"^- [\w.<>-]+ - " + _LEVEL_WORD + r" - ",
    r"^(?:\[[\w.-]+\] )?" + _LEVEL_WORD + r"\s+(?:- )?(?=\S)(?!\d{3}: )",  # (not wget's `ERROR 404: Not Found.`)
    r"^\[" + _LEVEL_WORD + r"\][ \t:]*",
    # structlog's console renderer, after its time: `[error    ] event   [logger] key=value`
    r"^\[(?P<lvl>critical|error|warning|warn|info|debug)\s*\] ",
    # sbt / Maven: `[error] `, `[warn] `; their `[info] ` relays a program's output, whatever it says
    r"^\[(?:info|INFO)\] ", r"^\[(?P<lvl>error|warn|debug)\] ",
    r"^" + _LEVEL_WORD + r"\s*\|\s*",
    # npm's warnings and notices (`npm WARN deprecated ...`); its `npm ERR!` lines keep their words
    r"^npm (?P<lvl>WARN|warn|notice) ",
    # W&B's console prefix `wandb: ` with its level
    r"^wandb: (?:(?P<lvl>ERROR|WARNING|INFO) )?(?:launch: )?",
    # Terraform relaying a provisioner's output: `null_resource.build (local-exec): `
    r"^[\w.\[\]\"-]+ \((?:local|remote)-exec\): ",
    # zerolog's console writer: its kitchen-clock time and three-letter level (`6:07PM ERR `)
    r"^\d{1,2}:\d\d(?:AM|PM) (?P<lvl>TRC|DBG|INF|WRN|ERR|FTL|PNC) ",
    # tqdm's last bar with the next output glued to it (it ends its bars with `\r`, not a newline:
    # `100%|██████████| 180/180 [05:35<00:00,  1.87s/it]/tmp/x.sh: line 1:  1619 Killed ...`)
    r"^\d{1,3}%\|[^|]*\| *\d+/\d+ \[[^\]]*\](?=\S)",
    # the App Engine Maven and Gradle plugins relaying gcloud's output (`[INFO] GCLOUD: ERROR: ...`)
    r"^GCLOUD: ",
    # Comet's console lines: `COMET WARNING: `, `COMET ERROR: `, `COMET INFO: `
    r"^COMET (?P<lvl>ERROR|WARNING|INFO|DEBUG): ",
    # `WARNING: ` / `INFO: ` (not `ERROR: `: gcloud and pip lines are read with it)
    r"^(?P<lvl>WARNING|WARN|INFO|DEBUG): ",
    # GitHub Actions' annotations as its log shows them (`Warning: `, `Notice: `; `Error: ` keeps its words)
    r"^(?P<lvl>Warning|Notice): ",
    # log4j's pattern as Spark and Hadoop print it (`19/02/13 12:25:54 WARN org.apache.spark.x: ...`)
    r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (?P<lvl>ERROR|WARN|INFO|DEBUG) [\w.$]+: ",
    # TensorRT-LLM's logger (`[07/08/2025-19:47:15] [TRT-LLM] [RANK 1] [E] Failed to initialize executor ...`)
    r"^\[\d\d/\d\d/\d{4}-\d\d:\d\d:\d\d\] \[TRT-LLM\] (?:\[RANK \d+\] )?\[(?P<lvl>[EWIV])\] ",
    # Azure Pipelines' and GitHub Actions' logging commands as their logs show them (`##[error]Exit
    # code 137 returned from process: ...`, `##[warning]...`)
    r"^##\[(?P<lvl>error|warning|debug)\]",
    # a LogEntry's payload field as Logs Explorer's expanded entry and `gcloud logging read`'s YAML
    # show it (`textPayload: "Failed to start the VM, ..."`): its closing quote is tidied later
    r'^textPayload: "',
))
# One alternation of them all, each alternative a named group `p<i>` (its level group `l<i>`):
# `re` tries the alternatives in order, in C, so the first prefix that matches wins as in a loop
# over the patterns, at a fraction of its cost (a loop's 50 `match` calls were most of the
# normaliser's time). The outer group closes last, so `lastgroup` names the alternative
# (https://docs.python.org/3/library/re.html#re.Match.lastindex).
# A line is tried only on the prefixes that can start with its first character (patterns.py).


@functools.lru_cache(maxsize=None)
def _alternation(indexes: Sequence[int]) -> re.Pattern[str]:
    return re.compile("^(?:" + "|".join(
        f"(?P<p{i}>" + _PREFIXES[i].pattern.removeprefix("^").replace("(?P<lvl>", f"(?P<l{i}>") + ")"
        for i in indexes) + ")")


_PREFIX = _alternation(tuple(range(len(_PREFIXES))))
_FIRSTS = [first_chars(p) for p in _PREFIXES]
_BY_FIRST = {char: _alternation(tuple(i for i, chars in enumerate(_FIRSTS) if chars is None or char in chars))
             for char in sorted(ASCII)}
_PREFIX_LEVEL = {f"p{i}": f"l{i}" for i, p in enumerate(_PREFIXES) if "lvl" in p.groupindex}
_WANDB = "p" + str(next(i for i, p in enumerate(_PREFIXES) if p.pattern.startswith("^wandb: ")))
_QUICK = re.compile(r"^[\d\[{|(#<A-Za-z^:-]")  # first characters any prefix can start with


@dataclass(frozen=True)
class LogLine:
    """One line: as printed, as the rules see it, and what level its prefixes named."""

    raw: str
    text: str
    level: str | None
    wandb: bool = False
    """Printed by W&B (`wandb: ` carrier), which prints its own errors at ERROR."""


# `│ text │` with no other rule inside: Rich's traceback frames have inner ones (`│   131 │   code`)
_BOXED = re.compile(r"^\s*│ ([^│]*\S)\s*│\s*$")
# a left gutter with no right-hand rule (Terraform's diagnostics, as printed in
# https://github.com/terraform-google-modules/terraform-google-vault/issues/206)
# (not a tree's: `│ ├─✖ step` in `argo get`)
_GUTTER = re.compile(r"^│ (?=[^\s\u2500-\u257f])(?!.*│\s*$)")


@functools.lru_cache(maxsize=8192)
def normalise(raw: str, level: str | None = None) -> LogLine:
    """Strip escapes and meaning-free prefixes (repeatedly); keep the last level they named."""
    text = raw[:MATCH_LIMIT].rstrip("\r\n")
    if "\x1b" in text:
        text = strip_escapes(text)
    wandb = False
    for _ in range(6):
        stripped = text.lstrip()
        if stripped[:1] == "│":
            boxed = _BOXED.match(stripped)
            if boxed:  # one line of prose in a drawn box (a TUI's panel), not a Rich traceback's frame
                text = boxed.group(1)
                continue
            if _GUTTER.match(stripped):  # Terraform's diagnostic: `╷`, `│ Error: ...` lines, `╵`
                text = stripped[2:]
                continue
        if stripped[:2] == '{"' and stripped.endswith("}"):
            text, level = _structured(stripped, level)
            if text is not stripped:
                continue
        if _LOGFMT_START.match(stripped):
            text, level = _logfmt(stripped, level)
            if text is not stripped:
                continue
        if not stripped or not _QUICK.match(stripped):
            break
        found = _BY_FIRST.get(stripped[0], _PREFIX).match(stripped)
        if not found or not found.end():
            break
        which = found.lastgroup
        named = found.group(_PREFIX_LEVEL[which]) if which in _PREFIX_LEVEL else None
        if named:
            level = LEVELS.get(named.upper(), level)
        wandb = wandb or which == _WANDB
        text = stripped[found.end():]
    return LogLine(raw, text, level, wandb)


_LOGFMT_START = re.compile(r"^(?:time|ts|t|level|lvl)=")
_LOGFMT_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
# an unquoted message that goes on past its first space, up to the next `key=` or the end
_LOOSE_MSG = re.compile(r'\b(?:msg|message)=(?!")(?P<msg>\S*(?: (?!\w+=)\S*)+)')


def _logfmt(text: str, level: str | None) -> tuple[str, str | None]:
    """A logfmt line (logrus' text formatter `time="..." level=error msg="..." error="..."`, go-kit's
    `level=error ts=... caller=... msg=...`): its message, the error field after it, and its level;
    the line as it is when it has no message."""
    pairs = {key: value[1:-1].replace('\\"', '"') if value.startswith('"') else value
             for key, value in _LOGFMT_PAIR.findall(text)}
    message = pairs.get("msg") or pairs.get("message")
    loose = _LOOSE_MSG.search(text)
    if loose:  # `msg=Error: creating EC2 Instance: ...`, unquoted though it holds spaces (openshift-install)
        message = loose.group("msg").strip()
    if not message:
        return text, level
    error = pairs.get("error") or pairs.get("err")
    named = pairs.get("level") or pairs.get("lvl")
    return (f"{message}: {error}" if error else message), LEVELS.get(named.upper(), level) if named else level


def _structured(text: str, level: str | None) -> tuple[str, str | None]:
    """A JSON log line (`{"level":"ERROR","msg":"..."}`, slog, structlog, wandb-core): its message
    and level; the line as it is when it is no such object."""
    try:
        record = json.loads(text)
    except ValueError:
        return text, level
    if not isinstance(record, dict):
        return text, level
    message = next((record[k] for k in ("msg", "message", "textPayload", "event")
                    if isinstance(record.get(k), str)), None)
    if message is None:
        return text, level
    named = next((record[k] for k in ("level", "severity", "levelname")
                  if isinstance(record.get(k), str)), None)
    if named:
        word = re.match(r"[A-Za-z]+", named)
        level = LEVELS.get(word.group().upper(), level) if word else level
    extra = record.get("error") or record.get("err")
    if isinstance(extra, str) and extra not in message:
        message = f"{message.rstrip().removesuffix(':')}: {extra}"  # `"msg":"sender: upsertRun:"`
    return message, level


# A log copied from the Logs Explorer or the Vertex console: each entry's text between its
# resource (`workerpool0-0`) and its time on lines of their own, with blank lines between.
_FILLER = re.compile(r"^\s*(?:" + _TS + r"|(?:UTC|GMT|[A-Z]{1,2}[SD]T|CES?T|EES?T|WES?T|IST|JST|KST)|workerpool\d+-\d+|(?:chief|worker|evaluator|ps)-\d+|)\s*$")


def drop_console_filler(lines: Sequence[str]) -> list[str]:
    """Without the filler lines of a console rendering, when most of the log is such filler."""
    def filler(line: str) -> bool:
        return bool(_FILLER.match(line[:200]) or _FILLER.match(normalise(line[:200]).text))

    head = lines[:60]
    fills = sum(1 for line in head if filler(line))
    blank = sum(1 for line in head if not normalise(line[:200]).text.strip())  # (a carrier's prefix alone)
    if len(lines) < 6 or fills - blank < len(head) // 4:
        return list(lines)
    return [line for line in lines if not filler(line)]


def split_text(text: str) -> list[str]:
    """Raw log text → lines: \\n or \\r\\n ends a line; a final newline adds no empty line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


_ENTRY_KEYS = ("textPayload", "jsonPayload", "protoPayload")


def _entry_like(value: Any) -> bool:
    return isinstance(value, dict) and any(key in value for key in _ENTRY_KEYS)


def _entries_in(text: str) -> list[dict[str, Any]] | None:
    """The LogEntries a text holds when it is nothing else: a JSON array of them (`gcloud logging
    read --format=json`, Logs Explorer's JSON download), an `entries.list` answer
    (`{"entries": [...]}`), one entry, or one entry per line (NDJSON); else None."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        whole = json.loads(stripped)
    except ValueError:
        whole = None
        try:
            whole = [json.loads(line) for line in stripped.splitlines() if line.strip()]
        except ValueError:
            return None
    if isinstance(whole, dict):
        whole = whole.get("entries") if isinstance(whole.get("entries"), list) else [whole]
    if not isinstance(whole, list) or not whole or not all(_entry_like(e) for e in whole):
        return None
    return whole


def lines_of_input(text: str) -> Sequence[str]:
    """What `explain --from-file` reads: exported LogEntries as their lines (oldest first, with
    their severities), anything else as text lines."""
    entries = _entries_in(text)
    return lines_from_entries(entries) if entries is not None else split_text(text)


_FLAT_TRACEBACK = re.compile(r"Traceback \(most recent call last\):\\n|\\n\s+File \"")


# a traceback whose newlines became spaces (a console that joins an entry's lines, an alert's
# text): its frames `File "x", line N, in f`, and after the last one the exception
_SPACED_FRAME = re.compile(r"(?:^|\s)(?=File \"[^\"]+\", line \d+, in \S)")
_SPACED_EXCEPTION = re.compile(r"\s(?=(?:(?:[a-z_]\w*\.)+_?[A-Z]\w*|[A-Z]\w*(?:Error|Exception)): )")


_CHAIN_BREAK = re.compile(r"\s*(Traceback \(most recent call last\):|The above exception was the direct cause "
                          r"of the following exception:|During handling of the above exception, another "
                          r"exception occurred:)\s*")


def _spaced_traceback(line: str) -> list[str] | None:
    """A traceback joined with spaces, as lines again; None when the line is no such thing."""
    head = line[:MATCH_LIMIT]
    if "\\n" in head or len(_SPACED_FRAME.findall(head)) < 2:
        return None
    parts: list[str] = []
    pieces = _CHAIN_BREAK.split(head)  # text, header, text, header, ...
    for k, piece in enumerate(pieces):
        if k % 2:
            parts.append(piece)  # a traceback's header or a chain's words, on a line of its own
            continue
        starts = [m.start() for m in _SPACED_FRAME.finditer(piece)]
        if not starts:
            if piece.strip():
                parts.append(piece.strip())
            continue
        if piece[:starts[0]].strip():
            parts.append(piece[:starts[0]].strip())
        frames = ["  " + piece[a:b].strip() for a, b in zip(starts, [*starts[1:], len(piece)])]
        exceptions = list(_SPACED_EXCEPTION.finditer(frames[-1]))
        if exceptions:
            last, cut = frames.pop(), exceptions[-1].start()
            frames += [last[:cut].rstrip(), last[cut:].strip()]
        parts += frames
    return parts


def unflatten(lines: Sequence[str]) -> list[str]:
    """Tracebacks flattened into one string (`...\\n  File "x"...` with literal backslash-n, as a
    JSON log field or a repr prints them, or with spaces) become lines again; a quoted YAML
    scalar folded over lines becomes one; other lines stay as they are."""
    out: list[str] = []
    after = 0  # the line after the last one a folded scalar took
    plain: set[str] = set()  # lines that are none of these on their own (a log repeats its lines)
    for i, line in enumerate(lines):
        if i < after:
            continue
        if line in plain:
            out.append(line)
            continue
        opens = (": '" in line and line.count("'") % 2) or (': "' in line and line.count('"') % 2)
        if opens and (folded := _yaml_scalar(lines, i)) is not None:  # a quote left open
            joined, after = folded
            out.append(joined)
        elif "\\n" in line and _FLAT_TRACEBACK.search(line[:MATCH_LIMIT]):
            out.extend(line.replace("\\r\\n", "\\n").replace('\\"', '"').split("\\n"))
        elif 'File "' in line and (spaced := _spaced_traceback(line)) is not None:
            out.extend(spaced)
        else:
            out.append(line)
            if not opens:  # (whether a quote opens a folded scalar depends on the lines below)
                plain.add(line)
    return out


# A quoted YAML scalar that a dumper folded over lines (`kubectl get pod -o yaml`'s `message:
# 'failed to create containerd task: ... OCI` and its more indented continuation lines, to the
# closing quote): one line again, as the message it is.
_YAML_OPEN = re.compile(r"^(?P<indent>\s*)(?:- )?[\w.-]+: (?P<q>['\"])(?P<rest>.*)$")
YAML_FOLD_LIMIT = 20


def _closes(text: str, quote: str) -> bool:
    """Whether a quoted scalar's text holds its closing quote (`''` and `\\"` are escapes)."""
    if quote == "'":
        return "'" in text.replace("''", "")
    return '"' in re.sub(r'\\.', "", text)


def _yaml_scalar(lines: Sequence[str], i: int) -> tuple[str, int] | None:
    """The folded scalar that starts on line i, joined, and the index after its last line; None
    when line i opens no scalar that goes on below it."""
    # (indentation is read after any prefix: a timestamp or `[rank0]:` on each line changes nothing)
    found = _YAML_OPEN.match(normalise(lines[i]).text)
    if not found or _closes(found.group("rest"), found.group("q")):
        return None
    depth = len(found.group("indent"))
    parts = [lines[i].rstrip()]
    j = i + 1
    while j < len(lines) and j - i <= YAML_FOLD_LIMIT:
        more = normalise(lines[j]).text
        if not more.strip() or len(more) - len(more.lstrip()) <= depth:
            return None  # not a continuation: the quote stays open on a line of its own
        parts.append(more.strip())
        j += 1
        if _closes(more, found.group("q")):
            return " ".join(parts), j
    return None


class EntryLines(list):  # type: ignore[type-arg]
    """Lines from LogEntries (a list of str), with the entries' severities beside them."""

    severities: list[str | None]


def lines_from_entries(entries: Iterable[dict[str, Any]]) -> EntryLines:
    """Cloud Logging LogEntry dicts (any order, newest first from the API) → lines, oldest first."""
    # The API lists newest first; reversing before a stable sort keeps entries that share a
    # timestamp in the order they were written.
    ordered = [e for e in list(entries)[::-1] if isinstance(e, dict)]
    keys: list[tuple[int, int]] = []
    last = (0, 0)
    for entry in ordered:
        key = _timestamp_key(entry.get("timestamp"))
        last = key if key is not None else last  # no timestamp: stay beside its neighbour
        keys.append(last)
    order = sorted(range(len(ordered)), key=keys.__getitem__)
    lines = EntryLines()
    severities: list[str | None] = []
    for index in order:
        entry = ordered[index]
        severity = entry.get("severity")
        for line in split_text(entry_text(entry)):
            lines.append(line)
            severities.append(severity if isinstance(severity, str) else None)
    lines.severities = severities
    return lines


def entry_text(entry: dict[str, Any]) -> str:
    """The text of one LogEntry: textPayload, jsonPayload's message, an audit log's status."""
    text = entry.get("textPayload")
    if isinstance(text, str):
        return text
    payload = entry.get("jsonPayload")
    if isinstance(payload, dict):
        for key in ("message", "msg", "textPayload", "event"):  # structlog's `event`
            if isinstance(payload.get(key), str):
                return str(payload[key])
        # a payload of fields only (Cloud Tasks' `attemptResponseLog: {"status": "DEADLINE_EXCEEDED"}`):
        # its fields on one line, as its JSON
        return json.dumps(payload, ensure_ascii=False) if payload else ""
    proto = entry.get("protoPayload")
    if isinstance(proto, dict):
        status = proto.get("status")
        if isinstance(status, dict) and isinstance(status.get("message"), str):
            return str(status["message"])
    return ""


_TIMESTAMP = re.compile(
    r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9})\d*)?(Z|[+-]\d\d:?\d\d)?$")


def _timestamp_key(value: Any) -> tuple[int, int] | None:
    """(epoch seconds, nanoseconds) of an RFC 3339 string or {seconds, nanos}; None if absent."""
    if isinstance(value, dict):
        try:
            return int(value.get("seconds", 0)), int(value.get("nanos", 0))
        except (TypeError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    found = _TIMESTAMP.match(value.strip())
    if not found:
        return None
    day, clock, fraction, zone = found.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        moment = _dt.datetime.fromisoformat(f"{day}T{clock}{zone}")
    except ValueError:
        return None
    return int(moment.timestamp()), int((fraction or "0").ljust(9, "0"))
