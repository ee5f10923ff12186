"""`ifriend.memory.ranking.best` against counting every posting, on random postings."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ifriend.memory.ranking import Scanned, best


class ListPostings:
    """Postings in lists, newest first; the cursor is a position."""

    def __init__(self, entries: dict[int, tuple[float, frozenset[int]]], terms: int) -> None:
        self.entries = entries
        self.lists = [
            sorted((e for e, (_, ts) in entries.items() if t in ts), key=lambda e: (entries[e][0], e), reverse=True)
            for t in range(terms)
        ]
        self.reads = 0

    async def scan(self, term: int, later: Sequence[int], cursor: Any, limit: int) -> tuple[list[Scanned], Any]:
        start = cursor or 0
        chunk = self.lists[term][start : start + limit]
        self.reads += len(chunk)
        rows = [Scanned(e, self.entries[e][0], len(self.entries[e][1] & set(later))) for e in chunk]
        end = start + len(chunk)
        return rows, (end if end < len(self.lists[term]) else None)


entries = st.dictionaries(
    st.integers(0, 200),
    st.tuples(st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.5]), st.frozensets(st.integers(0, 4), max_size=5)),
    max_size=60,
)


@settings(max_examples=500, deadline=None)
@given(entries=entries, limit=st.integers(1, 12), first=st.integers(1, 4), noise=st.lists(st.integers(0, 9), min_size=5, max_size=5))
def test_best_holds_the_top_entries(entries, limit, first, noise) -> None:
    postings = ListPostings(entries, 5)
    # Sizes are estimates: only their order matters, and a wrong one costs speed only.
    sizes = [len(p) + n if p else 0 for p, n in zip(postings.lists, noise)]
    found = asyncio.run(best(postings, sizes, limit, first_chunk=first, max_chunk=8))
    scores = {e: len(ts) for e, (_, ts) in entries.items() if ts}
    expected = sorted(scores, key=lambda e: (scores[e], entries[e][0], e), reverse=True)[:limit]
    key = {r.ref: (r.score, r.timestamp, r.ref) for r in found}
    assert all(key[r.ref][0] == scores[r.ref] for r in found)
    got = sorted(key, key=lambda e: key[e], reverse=True)[:limit]
    assert got == expected


def test_common_words_do_not_read_every_posting() -> None:
    # 1000 entries hold "the"; 20 hold "rare" too: the 10 best are found among the rare ones.
    entries = {i: (float(i), frozenset({0, 1} if i % 50 == 0 else {0})) for i in range(1000)}
    postings = ListPostings(entries, 2)
    found = asyncio.run(best(postings, [1000, 20], 10))
    assert sorted(r.ref for r in found) == sorted(range(0, 1000, 50))[-10:]
    assert postings.reads == 20
