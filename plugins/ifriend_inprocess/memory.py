"""`InProcessMemoryStore`: memory entries in dicts, with an inverted index per user.

No operation awaits, so each is atomic. A search counts, per entry, the query words
whose postings hold it (non-ASCII words verified on the entry's text), then takes the
newest entries of the best scores: O(postings of the query's words), never O(the
user's entries). It is simple on purpose: the other stores are tested against it.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ifriend.plugin_api import MemoryHit, MemoryRecord, MemoryScope, QueryTerm, verify


@dataclass(slots=True)
class _Entry:
    record: MemoryRecord
    session_id: str | None


@dataclass(slots=True)
class _UserMemory:
    entries: dict[str, _Entry] = field(default_factory=dict)
    postings: dict[str, set[str]] = field(default_factory=dict)
    sessions: dict[str | None, set[str]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)

    def put(self, record: MemoryRecord, session_id: str | None) -> None:
        self.remove(record.memory_id)
        self.entries[record.memory_id] = _Entry(record, session_id)
        for term in record.terms:
            self.postings.setdefault(term, set()).add(record.memory_id)
        self.sessions.setdefault(session_id, set()).add(record.memory_id)

    def remove(self, memory_id: str) -> bool:
        entry = self.entries.pop(memory_id, None)
        if entry is None:
            return False
        for term in entry.record.terms:
            ids = self.postings[term]
            ids.discard(memory_id)
            if not ids:
                del self.postings[term]
        owned = self.sessions[entry.session_id]
        owned.discard(memory_id)
        if not owned:
            del self.sessions[entry.session_id]
        return True

    def matches(self, term: QueryTerm) -> set[str]:
        """The ids matching one query word (a posting set itself: do not change it)."""
        found = [self.postings.get(key) for key in term.keys]
        if not all(found):
            return set()
        found.sort(key=len)
        candidates = found[0].intersection(*found[1:]) if len(found) > 1 else found[0]
        if term.exact:
            return candidates
        return {
            i
            for i in candidates
            if verify(term.word, self.entries[i].record.text_lower, self.entries[i].record.extras)
        }


class InProcessMemoryStore:
    """A `MemoryStore` in this process (development and tests); no TTL, as in ADK."""

    name = "memory"

    def __init__(self) -> None:
        self._users: dict[MemoryScope, _UserMemory] = {}

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def add(
        self,
        scope: MemoryScope,
        records: Sequence[MemoryRecord],
        *,
        session_id: str | None,
        replace: bool,
    ) -> int:
        user = self._users.setdefault(scope, _UserMemory())
        written = 0
        for record in records:
            if record.memory_id in user.deleted:
                continue
            old = user.entries.get(record.memory_id)
            if old is not None and (
                not replace
                or (old.session_id == session_id and old.record.digest == record.digest)
            ):
                continue
            user.put(record, session_id)
            written += 1
        if replace:
            keep = {r.memory_id for r in records}
            for memory_id in list(user.sessions.get(session_id, ())):
                if memory_id not in keep:
                    user.remove(memory_id)
        if not user.entries and not user.deleted:
            del self._users[scope]
        return written

    async def search(
        self, scope: MemoryScope, terms: Sequence[QueryTerm], limit: int
    ) -> list[MemoryHit]:
        user = self._users.get(scope)
        if user is None:
            return []
        counts: Counter[str] = Counter()
        for term in terms:
            counts.update(user.matches(term))
        by_score: dict[int, list[str]] = {}
        for memory_id, score in counts.items():
            by_score.setdefault(score, []).append(memory_id)
        entries = user.entries
        hits: list[MemoryHit] = []
        for score in sorted(by_score, reverse=True):
            best = heapq.nlargest(
                limit - len(hits),
                by_score[score],
                key=lambda i: (entries[i].record.timestamp, i),
            )
            hits += [MemoryHit(i, score, entries[i].record.timestamp, entries[i].record.payload) for i in best]
            if len(hits) >= limit:
                break
        return hits

    async def delete(self, scope: MemoryScope, memory_id: str) -> bool:
        user = self._users.get(scope)
        if user is None or not user.remove(memory_id):
            return False
        user.deleted.add(memory_id)
        return True
