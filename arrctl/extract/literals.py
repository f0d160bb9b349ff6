"""A fixed set of literal strings found in text in one pass (Aho-Corasick, pyahocorasick).

The extractor looks for some 600 literals twice: the prefilter's words over a whole log, and the
rules' guard literals in each candidate line. A regex of the literals (even as a trie) is tried
at every position of the text by Python's `re`: about 100 ms for a 10,000-line log. An
Aho-Corasick automaton reads each character once, whatever the number of literals, and reports
every occurrence, the ones inside others too (pyahocorasick's `Automaton.iter`: `(end index,
value)` pairs, https://pyahocorasick.readthedocs.io/en/latest/#iter-string-start-end-ignore-white-space-false).

Its automaton finds a node's child for the next character by reading the node's children in the
order they were added (`trienode_get_next` in its src/trienode.c: a linear scan), so at the root,
where the search returns after every mismatch, a common character found late costs a scan of
some sixty children. The literals are added in the order of how common their characters are in
logs: the prefilter's pass over bench/corpus.py's 10,000-line log takes 7 ms, not the 8 to 14 ms it
took in the order of a set (which changes from one process to the next).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import ahocorasick


# The characters of the corpus's logs (fixtures/real), most common first; any other comes after.
_COMMON = ' eatronislcd-p0.u/:1mg2h_bf34y,57"689kwv=\'RE(TF)Nx][ICOSAPDULGj^q*B|MW\\z>`{}<#HV+%KXYJ&Z$'
_RANK = {c: r for r, c in enumerate(_COMMON)}
_NEVER = "\x00"  # (the sentinels' last character: control characters are stripped from logs)


def _insertion_order(word: str) -> list[int]:
    return [_RANK.get(c, len(_COMMON) + ord(c)) for c in word]


class Literals:
    """The occurrences of a set of literals in a text."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(w for w in words if w)
        self._automaton = ahocorasick.Automaton()
        starting = {word[0] for word in self.words}
        # A character that starts no literal is looked for among all the root's children before
        # the search stays at the root: a common one (a digit, `=`) is made a child, early in the
        # order, by a literal that ends in a character no log holds (its value None; never reported).
        sentinels = [c + _NEVER for c in _COMMON + "\n" if c not in starting]
        for word in sorted([*self.words, *sentinels], key=_insertion_order):  # children commonest first
            self._automaton.add_word(word, word if word in self.words else None)
        if self.words:
            self._automaton.make_automaton()

    def occurrences(self, text: str) -> Iterator[tuple[int, str]]:
        """(start index, literal) of every occurrence, in the order of their ends."""
        if not self.words:
            return
        for end, word in self.ends(text):
            yield end - len(word) + 1, word

    def ends(self, text: str) -> Iterator[tuple[int, str]]:
        """(end index, literal) of every occurrence, as the automaton gives them (no start computed)."""
        if not self.words:
            return iter(())
        if _NEVER in text:  # (a sentinel found in a text that holds the character after all)
            return ((end, word) for end, word in self._automaton.iter(text) if word is not None)
        return self._automaton.iter(text)

    def found(self, text: str) -> set[str]:
        """The literals that occur in the text."""
        return {word for _start, word in self.occurrences(text)}
