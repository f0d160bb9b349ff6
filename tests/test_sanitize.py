"""sanitize.py: secrets never shown, terminal controls never emitted raw, one bounded line."""

from __future__ import annotations

import time

import orjson
import pytest

from arrctl.sanitize import one_line, printable, redact, redact_lines, safe_line

pytestmark = pytest.mark.timeout(10)

WANDB_KEY = "0123456789abcdef0123456789abcdef01234567"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----"
)


@pytest.mark.parametrize(("text", "expected"), [
    (f"WANDB_API_KEY={WANDB_KEY}", "WANDB_API_KEY=[REDACTED]"),
    (f"export WANDB_API_KEY='{WANDB_KEY}'", "export WANDB_API_KEY='[REDACTED]'"),
    (f"wandb.login(key=...) api_key {WANDB_KEY} rejected", "wandb.login(key=...) api_key [REDACTED] rejected"),
    (f"machine api.wandb.ai login user api:{WANDB_KEY}", "machine api.wandb.ai login user api:[REDACTED]"),
    (f"POST https://api:{WANDB_KEY}@api.wandb.ai/graphql", "POST https://api:[REDACTED]@api.wandb.ai/graphql"),
    ("token ya29.a0AfB_byC1-x_Y.z9 expired", "token [REDACTED] expired"),
    ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln== ok",
     "Authorization: Bearer [REDACTED] ok"),
    ("authorization: bearer abc.def-ghi", "authorization: bearer [REDACTED]"),
    ("connecting with password=hunter2&user=bob", "connecting with password=[REDACTED]&user=bob"),
    ("token=abc123, retries=3", "token=[REDACTED], retries=3"),
    ("HF_TOKEN=hf_abcdefghijklmnop run", "HF_TOKEN=[REDACTED] run"),
    ("client_secret: s3cr3t-value", "client_secret: [REDACTED]"),
    ('{"password": "p@ss w0rd", "user": "bob"}', '{"password": "[REDACTED]", "user": "bob"}'),
    ('{"refresh_token":"1//0g-abc","expires_in":3599}', '{"refresh_token":"[REDACTED]","expires_in":3599}'),
    ("{'api_key': 'k-123', 'entity': 'arr'}", "{'api_key': '[REDACTED]', 'entity': 'arr'}"),
    (f'"private_key": "{PEM.replace(chr(10), chr(92) + "n")}\\n"', '"private_key": "[REDACTED]"'),
    (f"key:\n{PEM}\nafter", "key:\n[REDACTED]\nafter"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n(log cut here)", "[REDACTED]"),
])
def test_each_secret_form_is_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent: running it twice changes nothing


@pytest.mark.parametrize("text", [
    "max_tokens=512 max_new_tokens=128",
    "tokenizer=gpt2 secrets_manager=enabled",
    "errors_total=0 status=PERMISSION_DENIED",
    "-----BEGIN CERTIFICATE-----",
    "commit 0123456789abcdef0123456789abcdef01234567",
    "wandb: ERROR api_key not configured (no-tty). call wandb.login(key=[your_api_key])",
])
def test_harmless_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_lines_hides_a_key_spread_over_lines() -> None:
    lines = ["before", *PEM.split("\n"), "after", f"token={WANDB_KEY}"]
    assert redact_lines(lines) == [
        "before", "[REDACTED]", "[REDACTED]", "[REDACTED]", "[REDACTED]", "after", "token=[REDACTED]"]
    assert redact_lines(["-----BEGIN EC PRIVATE KEY-----", "abc", "def"]) == ["[REDACTED]"] * 3


@pytest.mark.parametrize(("text", "expected"), [
    ("\x1b]0;evil title\x07after", "after"),                     # OSC set-title, BEL-terminated
    ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),      # OSC 8 hyperlink, ST-terminated
    ("\x1b[2Jcleared\x1b[H", "cleared"),                          # CSI clear screen, cursor home
    ("\x1b[1;31mred\x1b[0m", "red"),                              # SGR colours
    ("\x1bPq#0;2;0;0;0\x1b\\sixel", "sixel"),                     # DCS
    ("a\x1bcb", "ab"),                                            # ESC c: full reset
    ("nul\x00byte\x07bell\x08bs\x7fdel", "nulbytebellbsdel"),
    ("c1\x9b2Jcsi\x9d0;t\x9cend\x85nel", "c1csiendnel"),          # 8-bit CSI/OSC/NEL
    ("tab\there", "tab    here"),
    ("one\ntwo\r\nthree\rfour", "one ⏎ two ⏎ three ⏎ four"),
    ("bidi \u202egnp.exe\u202c", "bidi gnp.exe"),
    ("emoji 🚨 ❌ ⏱️ 👩‍💻 kept", "emoji 🚨 ❌ ⏱️ 👩‍💻 kept"),
    ("unterminated \x1b]0;title without end", "unterminated "),
    ("lone escape at end \x1b", "lone escape at end "),
])
def test_printable(text: str, expected: str) -> None:
    assert printable(text) == expected


def test_invalid_utf8_decoded_with_surrogateescape_becomes_replacement_chars() -> None:
    text = b"bad \xff\xfe bytes \xc3\x28 end".decode("utf-8", "surrogateescape")
    assert printable(text) == "bad \ufffd\ufffd bytes \ufffd( end"
    orjson.dumps(printable(text))
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(text)  # why it matters: the raw string cannot be encoded at all


def test_one_line_redacts_cleans_collapses_and_truncates() -> None:
    text = f"  wandb: ERROR\tWANDB_API_KEY={WANDB_KEY}\n\n  \x1b[31mfailed\x1b[0m   "
    assert one_line(text) == "wandb: ERROR WANDB_API_KEY=[REDACTED] ⏎ ⏎ failed"
    assert one_line("x" * 500) == "x" * 299 + "…"
    assert len(one_line("y " * 400, limit=40)) == 40
    assert one_line("short", limit=300) == "short"
    assert one_line("") == ""


def test_a_secret_split_by_an_escape_sequence_is_still_redacted() -> None:
    assert one_line("pass\x1b[0mword=hunter2") == "password=[REDACTED]"


def test_truncation_never_reveals_a_secret_cut_in_half() -> None:
    # Redaction happens before the cut, so the cut cannot leave a key's prefix behind.
    message = one_line("a" * 280 + f" WANDB_API_KEY={WANDB_KEY}")
    assert WANDB_KEY[:8] not in message and message.endswith("…")


def test_hostile_100_kb_line_gives_safe_json_in_reasonable_time() -> None:
    hostile = (
        "\x1b]0;evil\x07\x1b[2J\x00\x9b31m"
        + "token=" + "A" * 50_000
        + " \udcff\ud800 "
        + "a.b-c_" * 8_000
        + "\x1b]unterminated"
    )
    start = time.perf_counter()
    result = one_line(hostile)
    elapsed = time.perf_counter() - start
    assert result == "token=[REDACTED] " + ("\ufffd\ufffd " + "a.b-c_" * 8_000)[:282] + "…"
    assert len(result) == 300
    assert all(ch >= " " for ch in result)
    assert orjson.loads(orjson.dumps({"message": result}))["message"] == result
    assert elapsed < 0.5


@pytest.mark.parametrize("size", [100_000, 1_000_000])
def test_large_inputs_stay_linear(size: int) -> None:
    for text in ("x" * size, "a." * (size // 2), "password" * (size // 8), "\x1b[" * (size // 2)):
        start = time.perf_counter()
        cleaned = safe_line(text)
        assert time.perf_counter() - start < 1.0
        orjson.dumps(cleaned)


def test_safe_line_keeps_indentation() -> None:
    assert safe_line('  File "x.py", line 3\x1b[0m') == '  File "x.py", line 3'


# --- known secrets: the values arrctl holds, masked wherever they appear -----------------------

def test_a_known_secret_is_masked_bare_and_in_w_and_b_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from arrctl import sanitize

    monkeypatch.setattr(sanitize, "_known", [])
    key = "f" * 8 + "live" + "9" * 28
    assert redact(f"agent key {key} loaded") == f"agent key {key} loaded"  # no shape to recognise it by
    sanitize.add_known_secret(key)
    basic = base64.b64encode(f"api:{key}".encode()).decode()
    assert redact(f"agent key {key} loaded") == "agent key [REDACTED] loaded"
    assert redact(f"Authorization: Basic {basic}") == "Authorization: Basic [REDACTED]"
    assert sanitize.mask_known_bytes(f'{{"m": "{key}"}}'.encode()) == b'{"m": "[REDACTED]"}'
    sanitize.add_known_secret("short")  # too likely to occur by chance
    assert redact("a short word") == "a short word"


@pytest.mark.parametrize("text, expected", [
    ("x-goog-api-client:Bearer%20ya29.c0Encoded_8w end", "x-goog-api-client:Bearer [REDACTED] end"),
    ("access_tokenya29.a0GluedToken_1 end", "access_token[REDACTED] end"),
    ('env { name: "WANDB_API_KEY" value: "k3y" } env { name: "WANDB_RUN_ID" value: "r1" }',
     'env { name: "WANDB_API_KEY" value: "[REDACTED]" } env { name: "WANDB_RUN_ID" value: "r1" }'),
    ('[{"name": "WANDB_API_KEY", "value": "k3y"}, {"name": "WANDB_RUN_ID", "value": "r1"}]',
     '[{"name": "WANDB_API_KEY", "value": "[REDACTED]"}, {"name": "WANDB_RUN_ID", "value": "r1"}]'),
    ("{'name': 'HF_TOKEN', 'value': 'hf_abc'}", "{'name': 'HF_TOKEN', 'value': '[REDACTED]'}"),
])
def test_tokens_anywhere_and_secret_environment_entries_of_a_job_spec(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_one_line_with_spaces_keeps_a_columns_padding_and_breaks_the_rest():
    assert one_line("  Exit Code:    137  ", spaces=True) == "Exit Code:    137"
    assert one_line("a" + " " * 30 + "b", spaces=True) == "a b"
    assert one_line("Exit Code:    137") == "Exit Code: 137"


def test_a_word_of_prose_after_token_is_kept_and_a_tokens_value_is_not():
    said = "failed to fetch oauth token: unexpected status from GET request to https://gcr.io/v2/token?scope=x"
    assert redact(said) == said
    assert redact("token: ghp_abcdEFGH1234567890") == "token: [REDACTED]"
    assert redact("refresh_token: 1//0gAbCdEf") == "refresh_token: [REDACTED]"
    assert redact("password: hunter") == "password: [REDACTED]"
