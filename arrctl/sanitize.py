"""Make remote text safe to show: secrets redacted, terminal controls removed, one line.

Two kinds of secret are masked: those recognised by their shape (OAuth tokens `ya29.…`,
`Bearer …`, private keys, `password=…`, environment entries named like a secret) and the
*known* ones — values arrctl itself holds (the user's WANDB_API_KEY), registered with
`add_known_secret` and masked wherever they appear, with nothing around them to anchor on.
W&B Launch writes the API key into the Vertex job's environment in plain text
(wandb/sdk/launch/runner/vertex_runner.py extends `container_spec.env` with
`launch_project.get_env_vars_dict`, which sets WANDB_API_KEY), so a job spec quoted in a log
or an error carries the key bare.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from collections.abc import Iterable

REDACTED = "[REDACTED]"
NEWLINE_MARK = " ⏎ "

# A private key may span lines; an unterminated block (log cut short) is redacted to the end.
_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----|.*\Z)",
    re.DOTALL,
)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY-----")
_BEARER = re.compile(r"\b(Bearer)(?:\s+|%20|\+)[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE)
# Google OAuth access tokens always start with "ya29.", wherever they are (after `%20`, `=`, a
# letter): no word boundary is asked for.
_OAUTH = re.compile(r"ya29\.[0-9A-Za-z_\-]{4,}[0-9A-Za-z_\-.]*")
# An environment entry whose name says secret, as JSON / Python ({"name": "WANDB_API_KEY",
# "value": "..."}) or protobuf text (env { name: "WANDB_API_KEY" value: "..." }), as a Vertex
# job spec shows it.
_ENV_ENTRY = re.compile(
    r"(?i)(?P<head>[\"']?name[\"']?\s{0,3}[:=]\s{0,3}[\"'][\w.\-]{0,60}"
    r"(?:api[_\-]?key|token|secret|password|passwd)[\w.\-]{0,60}[\"']\s{0,3},?\s{0,3}"
    r"[\"']?value[\"']?\s{0,3}[:=]\s{0,3})(?P<quote>[\"'])(?P<value>[^\"'\n]{1,4000})(?P=quote)")
_KNOWN_MIN_CHARS = 8  # shorter values are too likely to occur by chance to be masked blindly
_known: list[str] = []
# Credentials in a URL (https://api:<key>@api.wandb.ai, as W&B's netrc-style auth writes it).
_URL_CREDENTIALS = re.compile(r"(://[^/\s:@]{1,100}:)[^@\s/]{1,400}@")
_WANDB_API_PAIR = re.compile(r"\b(api:)[A-Za-z0-9_\-]{40,}\b")
# "api_key 0123...": a W&B key (40 hex) after the word, with no "=" or ":" to anchor on.
_API_KEY_BARE = re.compile(r"(?i)\b(api[_-]?key\W{1,3})[0-9a-f]{40}\b")
# key=value, key: value and "key": "value" where the key ends with a secret's name (WANDB_API_KEY,
# refresh_token, client_secret). The match starts at that name, not at the key's first
# character: looking back over a key of any length would make a 100 KB line quadratic.
_SECRET_PAIR = re.compile(
    r"(?i)(?P<key>(?:password|passwd|secret|token|api[_\-]?key|private[_\-]?key|access[_\-]?key)"
    # `key=value`, `key: value` and `"key": "value"`; not `secret:latest` (an image tag, a name)
    r"[\"']?)(?P<sep>[ \t]{0,3}=[ \t]{0,3}|[ \t]{0,3}:[ \t]{1,3}|(?<=[\"'])[ \t]{0,3}:[ \t]{0,3})(?!\[REDACTED\])"
    r"(?P<value>\"(?:[^\"\\]|\\.){0,4000}\"|'[^']{0,4000}'|[^\s,;&\"'})\]>]+)"
)

# Escape sequences: CSI (ESC [ ... final), OSC / DCS / SOS / PM / APC strings up to BEL or ST
# (or the end of the text when unterminated), their 8-bit C1 forms, and two-character ESC codes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|[\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_C1 = re.compile(r"[\x80-\x9f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_LINE_BREAKS = re.compile(r"\r\n|[\n\r\u2028\u2029]")
# C0 except tab/newline/CR (handled above), DEL, C1, and the bidi overrides that can make a
# terminal show text in an order other than the bytes' ("Trojan Source").
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_WHITESPACE = re.compile(r"\s+")
# whitespace that breaks or tabs a line, or pads far (a short run of plain spaces aligns a column as
# printed: `Exit Code:    137`, `exitcode  : 1`)
_BREAKING_WHITESPACE = re.compile(r" *[^\S ]\s*| {9,}")


def add_known_secret(value: str | None) -> None:
    """Mask `value` wherever it appears in any text from now on (and W&B's Basic auth form of it)."""
    value = (value or "").strip()
    if len(value) < _KNOWN_MIN_CHARS:
        return
    basic = base64.b64encode(f"api:{value}".encode()).decode()  # Authorization: Basic of a W&B key
    for form in (value, basic, basic.rstrip("=")):
        if form not in _known:
            _known.append(form)
    _known.sort(key=len, reverse=True)  # the longest first, so no part of one is left behind


def mask_known(text: str) -> str:
    """Text with every known secret replaced by [REDACTED] (cheap: plain substring search)."""
    for secret in _known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact(text: str) -> str:
    """Replace secrets (API keys, OAuth and bearer tokens, private keys, passwords) by [REDACTED]."""
    text = mask_known(text)
    if "PRIVATE KEY-----" in text:
        text = _PEM.sub(REDACTED, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _OAUTH.sub(REDACTED, text)
    text = _ENV_ENTRY.sub(lambda m: f"{m.group('head')}{m.group('quote')}{REDACTED}{m.group('quote')}", text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    text = _WANDB_API_PAIR.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _API_KEY_BARE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _SECRET_PAIR.sub(_redact_pair, text)


# a short lower-case word after `token: ` is prose, not a token's value (buildx's `failed to fetch
# oauth token: unexpected status from GET request`); tokens are long or mixed
_PROSE_AFTER_TOKEN = re.compile(r"[a-z]{1,15}")


def _redact_pair(match: re.Match[str]) -> str:
    """Keep the key and the quoting style of a key/value pair, hide the value."""
    value = match.group("value")
    if match.group("key").lower().endswith("token") and ":" in match.group("sep") \
            and _PROSE_AFTER_TOKEN.fullmatch(value):
        return match.group(0)
    quote = value[0] if value[:1] in ('"', "'") else ""
    return f"{match.group('key')}{match.group('sep')}{quote}{REDACTED}{quote}"


def strip_escapes(text: str) -> str:
    """Text without terminal escape sequences (CSI, OSC, DCS, their C1 forms)."""
    return _ESCAPES.sub("", text)


def printable(text: str) -> str:
    """Text a terminal shows as-is: no escape sequences or control characters, on one line."""
    if _SURROGATES.search(text):
        # Lone surrogates come from bytes decoded with surrogateescape; they cannot be encoded.
        text = _SURROGATES.sub("\ufffd", text)
    if "\x1b" in text or (not text.isascii() and _C1.search(text)):
        text = _ESCAPES.sub("", text)
    text = text.replace("\t", "    ")
    text = _LINE_BREAKS.sub(NEWLINE_MARK, text)
    return _CONTROLS.sub("", text)


def safe_line(text: str) -> str:
    """One printable, redacted line, whitespace kept (for context lines)."""
    # Controls go first: an escape sequence inside a secret would hide it from the patterns.
    return redact(printable(text))


def one_line(text: str, limit: int = 300, *, spaces: bool = False) -> str:
    """Redacted, printable, whitespace collapsed and cut to `limit` characters with an ellipsis;
    with `spaces`, runs of plain spaces are kept as printed (a quoted line's columns)."""
    if not text:
        return ""
    text = (_BREAKING_WHITESPACE if spaces else _WHITESPACE).sub(" ", safe_line(text)).strip()
    if len(text) > limit:
        return text[: max(limit - 1, 0)].rstrip() + "…"
    return text


class LineRedactor:
    """Redacts a stream of lines one at a time, remembering when a private-key block is open
    (a key that spans lines, or log entries: `arrctl logs` carries `inside` from one read to the next)."""

    def __init__(self, inside: bool = False) -> None:
        self.inside = inside

    def line(self, line: str) -> str:
        """The line redacted; every line of an open private-key block is [REDACTED]."""
        if self.inside:
            if _PEM_END.search(line):
                self.inside = False
            return REDACTED
        begin = _PEM_BEGIN.search(line)
        if begin and not _PEM_END.search(line, begin.end()):
            self.inside = True
        return redact(line)


def redact_lines(lines: Iterable[str]) -> list[str]:
    """Redact each line, and every line of a private-key block that spans lines."""
    redactor = LineRedactor()
    return [redactor.line(line) for line in lines]


# Remote text crosses into arrctl in rows and facts; these make every string of them safe once,
# in the worker, so no renderer (text, NDJSON read back by `jq -r`) can show a secret or an escape.
_ROW_TEXT_LIMIT = 2000  # per string; messages are already cut to 300 by their makers


def clean_value(value: Any) -> Any:
    """Strings redacted and printable (recursively through lists and dicts); other values as they are.

    Whitespace inside a string is kept (log context lines keep their indentation); every string
    is capped at the same length.
    """
    if isinstance(value, str):
        if not (value.isprintable() and value.isascii() and not _looks_secret(value)):
            value = safe_line(value)
        if len(value) > _ROW_TEXT_LIMIT:
            value = value[: _ROW_TEXT_LIMIT - 1] + "…"
        return value
    if isinstance(value, dict):
        return {clean_value(k) if isinstance(k, str) else k: clean_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_value(v) for v in value]
    return value


def clean_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row whose every string (name, message, extra values, even the id) is safe to print."""
    return {key: clean_value(value) for key, value in row.items()}


def _looks_secret(text: str) -> bool:
    """Cheap pre-check: only text that might hold a secret pays for `redact`."""
    return redact(text) != text


def mask_known_bytes(data: bytes) -> bytes:
    """Bytes (an NDJSON line, a report) with every known secret replaced by [REDACTED]."""
    for secret in _known:
        encoded = secret.encode()
        if encoded in data:
            data = data.replace(encoded, REDACTED.encode())
    return data
