"""An index of the words of a large evaluation's members, for $expand's text filter and the UI's
type-ahead.

The filter is a word-prefix match (expand.py): every word of the filter must start a word of the
member's search text. Scanning one string of all 98,466 ICD-10-CM texts for each new prefix costs
milliseconds however few members match; here the distinct words are sorted once, each with the
positions of the members that hold it (an array of 4-byte integers), so that the words a prefix
starts are a range found by bisection and the members are the union of their positions. The
most selective word of the filter (the fewest positions in its range, read from running totals)
gives the candidates; the others are checked on each candidate's text, as before.

Memory: 4 bytes per (member, distinct word) and one string per distinct word, built once per kept
evaluation, like the one-string index it replaces (for ICD-10-CM 1.1 million positions and 24,551
words: 9.6 MB by tracemalloc, against 8.4 MB of text and its offsets for that string).
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate

from . import budget

_PAST = "\U0010ffff"  # after every character a word can hold


class WordIndex:
    def __init__(self, texts: Sequence[str]):
        """`texts`: each member's search text, its words each after a space (expand._search_text)."""
        postings: dict[str, array[int]] = {}
        for position, text in enumerate(budget.checked(texts)):
            for word in set(text.split()):
                found = postings.get(word)
                if found is None:
                    found = postings[word] = array("I")
                found.append(position)
        self.texts = texts
        self.words = sorted(postings)
        self._postings = [postings[word] for word in self.words]
        self._totals = [0, *accumulate(len(p) for p in self._postings)]

    def _range(self, prefix: str) -> tuple[int, int]:
        return bisect_left(self.words, prefix), bisect_left(self.words, prefix + _PAST)

    def _size(self, prefix: str) -> int:
        """At most this many members hold a word that `prefix` starts (a member may hold several)."""
        low, high = self._range(prefix)
        return self._totals[high] - self._totals[low]

    def matches(self, wanted: list[str], limit: int | None = None) -> list[int]:
        """The positions, in order, of the members a word of which each of `wanted` starts; the
        first `limit` of them if given."""
        if not wanted:
            return list(range(len(self.texts) if limit is None else min(limit, len(self.texts))))
        ordered = sorted(wanted, key=self._size)
        low, high = self._range(ordered[0])
        lists = self._postings[low:high]
        needles = [" " + word for word in ordered[1:]]
        texts = self.texts
        if limit is None:  # all of them: one union and one sort in C, then one pass for the other words
            budget.check()
            everything = list(lists[0]) if len(lists) == 1 else sorted(set().union(*lists))
            budget.check()
            if needles:
                everything = [p for p in everything if all(needle in texts[p] for needle in needles)]
            return everything
        found: list[int] = []
        for examined, position in enumerate(lists[0] if len(lists) == 1 else _unique(heapq.merge(*lists)), 1):
            if not examined % budget.STRIDE:
                budget.check()
            if all(needle in texts[position] for needle in needles):
                found.append(position)
                if len(found) >= limit:
                    break
        return found


def _unique(ordered: Iterator[int]) -> Iterator[int]:
    last = -1
    for position in ordered:
        if position != last:
            yield position
            last = position
