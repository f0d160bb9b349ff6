"""A fixed set of literal strings found in text in one pass (Aho-Corasick, pyahocorasick).

The extractor looks for some 600 literals twice: the prefilter's words over a whole log, and the
rules' guard literals in each candidate line. A regex of the literals (even as a trie) is tried
at every position of the text by Python's `re`: about 100 ms for a 10,000-line log. An
Aho-Corasick automaton reads each character once, whatever the number of literals, and reports
every occurrence, the ones inside others too (pyahocorasick's `Automaton.iter`: `(end index,
value)` pairs, https://pyahocorasick.readthedocs.io/en/latest/#iter-string-start-end-ignore-white-space-false).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import ahocorasick


class Literals:
    """The occurrences of a set of literals in a text."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(w for w in words if w)
        self._automaton = ahocorasick.Automaton()
        for word in self.words:
            self._automaton.add_word(word, word)
        if self.words:
            self._automaton.make_automaton()

    def occurrences(self, text: str) -> Iterator[tuple[int, str]]:
        """(start index, literal) of every occurrence, in the order of their ends."""
        if not self.words:
            return
        for end, word in self._automaton.iter(text):
            yield end - len(word) + 1, word

    def found(self, text: str) -> set[str]:
        """The literals that occur in the text."""
        return {word for _start, word in self.occurrences(text)}
