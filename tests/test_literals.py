"""The extractor's two literal searches (extract/literals.py) give what a plain scan gives: the
rule index the first rule of the table, the prefilter every line holding one of its words."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from arrctl.extract.ingest import normalise
from arrctl.extract.literals import Literals
from arrctl.extract.rules import RULES, label
from arrctl.extract.scan import PREFILTER, _WEAK, candidate_indexes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import corpus  # noqa: E402

pytestmark = pytest.mark.timeout(60)
LINES = [line for _, _, lines in corpus.cases() for line in lines] + [
    line for path in sorted((ROOT / "fixtures" / "logs").glob("*.log"))
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]


def test_every_occurrence_is_found_nested_and_overlapping_ones_too():
    found = Literals(["error", "rror:", "or: x", "Killed"])
    assert sorted(found.occurrences("an error: x, Killed")) == [(3, "error"), (4, "rror:"), (6, "or: x"), (13, "Killed")]
    assert found.found("nothing here") == set() and Literals([]).found("error") == set()


def test_the_rule_index_gives_the_first_rule_of_the_table_on_every_corpus_line():
    def table_scan(text):
        for rule in RULES:
            for pattern in rule.patterns:
                match = pattern.search(text)
                if match:
                    return rule.name, match.span()
        return None

    differ = []
    for raw in dict.fromkeys(LINES):  # each distinct line once
        text = normalise(raw, None).text.strip()
        got = label(text)
        if (got and (got[0].name, got[1].span())) != table_scan(text):
            differ.append(text)
    assert differ == [] and len(LINES) > 5000


def test_the_prefilter_keeps_each_line_that_holds_one_of_its_words():
    weak = re.compile(r"Error\b|\berror\b|\bERROR\b")
    strong = [w for w in PREFILTER.words if w not in _WEAK]

    def holds(line):
        line = line[:8192]
        return any(w in line for w in strong) or bool(weak.search(line))

    assert candidate_indexes(LINES) == [i for i, line in enumerate(LINES) if holds(line)]
    # metric names are not errors; an exception's class and the word are
    assert candidate_indexes(["val_error=0.1 errors_total=0", "KeyError: 'x'", "an error", "on_error=x"]) == [1, 2]


def test_a_text_holding_the_sentinels_character_reports_only_real_literals():
    # (a digit starts no literal here: it is made a root child by a sentinel ending in "\x00")
    found = Literals(["error", "Killed"])
    assert sorted(found.occurrences("0\x00 1\x00error\x00 =\x00Killed")) == [(5, "error"), (14, "Killed")]
    assert list(found.ends("0\x00")) == [] and found.found("e\x00") == set()
