"""The in-process tier: parsed sessions in an LRU bounded by count and by bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from google.adk.events.event import Event

from ifriend.plugin_api import Revision, SessionKey

# A parsed event takes several times the memory of its JSON; the byte bound is
# an estimate from the JSON size times this factor plus a per-session overhead.
MEMORY_PER_JSON_BYTE = 4
SESSION_OVERHEAD_BYTES = 2048


@dataclass(frozen=True, slots=True)
class CachedSession:
    """One session's parsed log at a revision: the first `count` events of `log`.

    Never mutated. Entries of one session share `log`, which only grows: advancing the
    entry that ends where `log` ends appends to it in place, so an append costs no copy
    of a long history (copying 10,000 references, and touching each event's reference
    count, cost half a millisecond); advancing an older entry copies its part first.
    """

    revision: Revision
    last_update_time: float
    state: dict[str, Any]
    log: list[Event]
    count: int
    nbytes: int

    @classmethod
    def of(
        cls, revision: Revision, last_update_time: float, state: dict[str, Any], events: list[Event], nbytes: int
    ) -> CachedSession:
        """An entry owning `events` (the caller hands the list over)."""
        return cls(revision, last_update_time, state, events, len(events), nbytes)

    @property
    def events(self) -> list[Event]:
        """The events at this revision, as a list of the caller's own."""
        return self.log[: self.count]

    def at(self, revision: Revision, last_update_time: float, state: dict[str, Any]) -> CachedSession:
        """The same events at a new revision (Redis confirmed them)."""
        return CachedSession(revision, last_update_time, state, self.log, self.count, self.nbytes)

    def advanced(
        self,
        revision: Revision,
        last_update_time: float,
        state: dict[str, Any],
        tail: list[Event],
        tail_json_bytes: int,
    ) -> CachedSession:
        log = self.log if len(self.log) == self.count else self.log[: self.count]
        log.extend(tail)
        return CachedSession(
            revision,
            last_update_time,
            state,
            log,
            len(log),
            self.nbytes + tail_json_bytes * MEMORY_PER_JSON_BYTE,
        )


def estimate_nbytes(json_bytes: int) -> int:
    return SESSION_OVERHEAD_BYTES + json_bytes * MEMORY_PER_JSON_BYTE


class SessionCache:
    """LRU of `CachedSession`s, at most `max_sessions` of them and about `max_bytes` in all."""

    def __init__(self, *, max_sessions: int, max_bytes: int) -> None:
        self.max_sessions = max_sessions
        self._lru: LRUCache[SessionKey, CachedSession] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda entry: entry.nbytes
        )

    def get(self, key: SessionKey) -> CachedSession | None:
        return self._lru.get(key)

    def offer(self, key: SessionKey, entry: CachedSession) -> None:
        """Keep `entry` unless the cache already holds a newer copy of the same session."""
        current = self._lru.get(key)
        if (
            current is not None
            and current.revision.incarnation == entry.revision.incarnation
            and current.revision.version > entry.revision.version
        ):
            return
        if entry.nbytes > self._lru.maxsize:
            self._lru.pop(key, None)
            return
        self._lru[key] = entry
        while len(self._lru) > self.max_sessions:
            self._lru.popitem()

    def discard(self, key: SessionKey) -> None:
        self._lru.pop(key, None)

    def clear(self) -> None:
        self._lru.clear()

    def __len__(self) -> int:
        return len(self._lru)

    @property
    def nbytes(self) -> int:
        return int(self._lru.currsize)
