"""The best few entries of a search without counting every posting of every query word.

An entry's score is the number of query words it matches, and an entry matching at
least `c` of `k` words appears in at least one of any `k - c + 1` of their postings.
So, with the words ordered from the fewest postings up, `best` reads the postings of
the first word (newest first), counting for each entry the later words it matches,
and stops as soon as the entries found settle the result; only if too few entries
match that many words does it read the next word's postings, and so on. A query of
common words ("what is the weather") reads a few hundred postings, not all of them.

Stores provide `Postings.scan`; the Redis store runs the same algorithm in Lua.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class Scanned:
    """One posting read by `Postings.scan`."""

    ref: Hashable
    timestamp: float
    later: int
    """How many of the `later` terms the entry also matches."""


@dataclass(slots=True)
class Ranked:
    ref: Hashable
    score: int
    timestamp: float


class Postings(Protocol):
    async def scan(
        self, term: int, later: Sequence[int], cursor: Any, limit: int
    ) -> tuple[list[Scanned], Any]:
        """Up to `limit` entries matching `term`, newest first, after `cursor` (None: from
        the newest), each with how many of `later` it matches; the cursor to go on from,
        None once the postings are exhausted."""
        ...


def cut(ranked: list[Ranked], n: int) -> list[Ranked]:
    """The best `n` by (score, timestamp), plus any tied with the last (ids break those ties)."""
    ranked.sort(key=lambda r: (r.score, r.timestamp), reverse=True)
    end = min(n, len(ranked))
    while 0 < end < len(ranked) and (ranked[end].score, ranked[end].timestamp) == (
        ranked[end - 1].score,
        ranked[end - 1].timestamp,
    ):
        end += 1
    return ranked[:end]


async def best(
    postings: Postings,
    sizes: Sequence[int],
    limit: int,
    *,
    first_chunk: int = 128,
    max_chunk: int = 4096,
) -> list[Ranked]:
    """Entries holding the best `limit` by (score, timestamp); ties at the end all kept.

    `sizes[i]` estimates term i's postings (only the order they give matters; 0 means
    the term matches nothing).
    """
    order = sorted((i for i in range(len(sizes)) if sizes[i] > 0), key=lambda i: (sizes[i], i))
    known: dict[Hashable, Ranked] = {}
    for m, term in enumerate(order):
        level = len(order) - m  # entries scoring >= level all hold one of order[: m + 1]
        above = [r for r in known.values() if r.score > level]  # complete: order[:m] are read
        if len(above) >= limit:
            return cut(above, limit)
        need = limit - len(above)
        at_level = [r for r in known.values() if r.score == level]
        later = order[m + 1 :]
        cursor, chunk = None, first_chunk
        while True:
            rows, cursor = await postings.scan(term, later, cursor, chunk)
            for row in rows:
                if row.ref not in known:
                    ranked = known[row.ref] = Ranked(row.ref, 1 + row.later, row.timestamp)
                    if ranked.score == level:
                        at_level.append(ranked)
            if cursor is None:
                break
            # Entries of this level not read yet are older than the last one read.
            frontier = rows[-1].timestamp
            if sum(1 for r in at_level if r.timestamp > frontier) >= need:
                return above + cut(at_level, need)
            chunk = min(chunk * 8, max_chunk)
        if len(above) + len(at_level) >= limit:
            return above + cut(at_level, need)
    return cut(list(known.values()), limit)
