"""The contract between `MemoryService` and the storage backends it composes.

A store keeps entries per (app, user) scope, each with the index terms the service
computed (`ifriend.memory.text`), and answers `search` with the best `limit` entries:
most distinct query words matched first, then the most recent (`timestamp`), then the
greater `memory_id` (ties broken the same way by every backend).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .text import QueryTerm


@dataclass(frozen=True, slots=True)
class MemoryScope:
    """One user of one app: no read or write crosses it."""

    app_name: str
    user_id: str


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """One entry as stored: its payload (JSON) and what the index needs."""

    memory_id: str
    timestamp: float
    payload: bytes
    """`{"content": ..., "author": ..., "timestamp": ..., "custom_metadata": ...}` as JSON."""
    text: str
    terms: tuple[str, ...]
    author: str | None = None
    text_lower: str | None = None
    extras: tuple[str, ...] = ()
    digest: str = field(init=False)
    """Changes whenever anything stored about the entry does."""

    def __post_init__(self) -> None:
        h = hashlib.sha1(self.payload)
        h.update(repr((self.timestamp, self.terms, self.extras)).encode())
        object.__setattr__(self, "digest", h.hexdigest())


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One search result before it becomes an ADK `MemoryEntry`."""

    memory_id: str
    score: int
    timestamp: float
    payload: bytes


def rank_key(hit: MemoryHit) -> tuple[int, float, str]:
    """Sort with `reverse=True`: more words matched, then newer, then the greater id."""
    return (hit.score, hit.timestamp, hit.memory_id)


@runtime_checkable
class MemoryStore(Protocol):
    """Storage of memory entries; the service validates and analyzes before calling it.

    `add` with `replace=False` stores the records whose id the scope does not hold yet
    (nor has deleted): ADK's `add_events_to_memory`. With `replace=True` (ADK's
    `add_session_to_memory`), `records` are the whole of session `session_id`: each is
    stored or updated, and the session's other entries are removed. An id deleted with
    `delete` is never stored again in the scope (ADK keeps the same tombstone).
    """

    name: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def add(
        self,
        scope: MemoryScope,
        records: Sequence[MemoryRecord],
        *,
        session_id: str | None,
        replace: bool,
    ) -> int:
        """Store `records`; return how many were written (new or changed)."""
        ...

    async def search(
        self, scope: MemoryScope, terms: Sequence[QueryTerm], limit: int
    ) -> list[MemoryHit]:
        """The best `limit` entries matching at least one term, best first (`rank_key`)."""
        ...

    async def delete(self, scope: MemoryScope, memory_id: str) -> bool:
        """Remove one entry and remember its id as deleted; False if it was not stored."""
        ...
