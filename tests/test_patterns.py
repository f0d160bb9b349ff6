"""What a pattern's matches can start with (extract/patterns.py), and the normaliser that tries
only the prefixes a line's first character allows: it reads every corpus line as trying each
prefix in turn does."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from arrctl.extract import ingest
from arrctl.extract.patterns import first_chars

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import corpus  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(("pattern", "chars"), [
    (r"^\d{4}-", set("0123456789")),
    (r"^(?:\[Container\] )?\d{4}/", set("[0123456789")),
    (r"^(?P<lvl>[EW]|ERROR|INFO) ", set("EWI")),
    (r"^\[(?=x)", {"["}),
    (r"^[\w.]+: ", set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")),
])
def test_the_first_characters_of_a_pattern_are_read_from_its_parts(pattern, chars):
    assert first_chars(re.compile(pattern)) == frozenset(chars)


@pytest.mark.parametrize("pattern", [r"^[^x]y", r"^.", r"^a?", r"(?i)^abc", r"^(?:a|b?)"])
def test_a_pattern_that_may_start_anywhere_or_match_nothing_has_no_answer(pattern):
    assert first_chars(re.compile(pattern)) is None


def test_the_normaliser_finds_the_prefix_trying_each_in_turn_finds_on_every_corpus_line():
    def in_turn(text):
        for i, pattern in enumerate(ingest._PREFIXES):
            found = pattern.match(text)
            if found and found.end():
                return i, found.end(), found.groupdict().get("lvl")
        return None

    def dispatched(text):
        found = ingest._BY_FIRST.get(text[:1], ingest._PREFIX).match(text)
        if not found or not found.end():
            return None
        i = int(found.lastgroup[1:])
        return i, found.end(), found.group(f"l{i}") if f"l{i}" in found.re.groupindex else None

    lines = {line.lstrip() for _, _, lines in corpus.cases() for line in lines}
    lines |= {ingest.normalise(line).text.lstrip() for line in lines}  # second prefixes too
    differ = [text for text in lines if text and dispatched(text) != in_turn(text)]
    assert differ == [] and len(lines) > 5000


def test_no_comment_in_the_rule_table_swallows_the_patterns_after_it():
    """A `# note` put before more patterns on one line of rules.py makes them part of the comment
    (it happened three times): no comment there holds a raw string's opening."""
    import io
    import tokenize
    source = (ROOT / "arrctl" / "extract" / "rules.py").read_text()
    swallowed = [tok.string for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                 if tok.type == tokenize.COMMENT and re.search(r'(?:^|[\s,(\[])r"[^"`]*"\s*[,\]]', tok.string)]
    assert swallowed == []
