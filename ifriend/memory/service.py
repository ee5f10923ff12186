"""`MemoryService`: ADK's memory contract over any `MemoryStore`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session

from ..errors import InvalidInputError
from ..sessions.validation import SessionLimits, validate_id
from ..telemetry.recorder import Operation, Recorder, current_recorder
from ..telemetry.names import GEN_AI_OPERATION, MEMORY_GEN_AI_OPERATIONS
from .entries import entry_of_hit, record_of_entry, record_of_event
from .store import MemoryRecord, MemoryScope, MemoryStore, rank_key
from .text import query_terms


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    """Bounds on writes and searches."""

    max_results: int = 10
    max_id_length: int = 128
    max_entry_bytes: int = 1_048_576

    @property
    def ids(self) -> SessionLimits:
        return SessionLimits(max_id_length=self.max_id_length)


class MemoryService(BaseMemoryService):
    """An ADK `BaseMemoryService` whose storage is a `MemoryStore`.

    Adds validate ids and sizes before anything is written; spans record the
    backend and counts, never text.
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        backend: str | None = None,
        limits: MemoryLimits | None = None,
        telemetry: Recorder | None = None,
    ) -> None:
        self.store = store
        self.backend = backend or store.name
        self.limits = limits or MemoryLimits()
        # The App's recorder; None: whichever is in flight (`current_recorder`).
        self.telemetry = telemetry

    def _operation(self, operation: str) -> Operation:
        return (self.telemetry or current_recorder()).operation(
            f"ifriend.memory.{operation}",
            backend=self.backend,
            **{GEN_AI_OPERATION: MEMORY_GEN_AI_OPERATIONS[operation]},
        )

    async def connect(self) -> None:
        await self.store.connect()

    async def close(self) -> None:
        await self.store.close()

    async def ping(self) -> None:
        await self.store.ping()

    def _scope(self, app_name: str, user_id: str) -> MemoryScope:
        ids = self.limits.ids
        return MemoryScope(validate_id("app_name", app_name, ids), validate_id("user_id", user_id, ids))

    def _records_of(self, events: Sequence[Event]) -> list[MemoryRecord]:
        made = (record_of_event(e, self.limits.ids, self.limits.max_entry_bytes) for e in events)
        return _unique(r for r in made if r is not None)

    async def _add(
        self,
        operation: str,
        scope: MemoryScope,
        records: list[MemoryRecord],
        *,
        session_id: str | None,
        replace: bool,
    ) -> None:
        with self._operation(operation) as span:
            span.set_attribute("ifriend.entries", len(records))
            written = await self.store.add(scope, records, session_id=session_id, replace=replace)
            span.set_attribute("ifriend.written", written)

    async def add_session_to_memory(self, session: Session) -> None:
        """Store the session's events that have text; its entries no longer in it go."""
        scope = self._scope(session.app_name, session.user_id)
        session_id = validate_id("session_id", session.id, self.limits.ids)
        records = self._records_of(session.events)
        await self._add(
            "add_session_to_memory", scope, records, session_id=session_id, replace=True
        )

    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Store the events that have text and are not stored yet (`custom_metadata` unused)."""
        scope = self._scope(app_name, user_id)
        if session_id is not None:
            validate_id("session_id", session_id, self.limits.ids)
        records = self._records_of(events)
        await self._add(
            "add_events_to_memory", scope, records, session_id=session_id, replace=False
        )

    async def add_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        memories: Sequence[MemoryEntry],
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        """Store explicit entries (an entry without `id` gets a new one); those without text are skipped."""
        scope = self._scope(app_name, user_id)
        records = []
        for entry in memories:
            if not isinstance(entry, MemoryEntry):
                raise InvalidInputError(f"memories must be MemoryEntry objects, got {type(entry).__name__}")
            memory_id = entry.id or uuid.uuid4().hex
            made = record_of_entry(entry, memory_id, self.limits.ids, self.limits.max_entry_bytes)
            if made is not None:
                records.append(made)
        await self._add("add_memory", scope, _unique(records), session_id=None, replace=False)

    async def search_memory(
        self, *, app_name: str, user_id: str, query: str
    ) -> SearchMemoryResponse:
        """The entries sharing the most words with `query` (then the newest), at most `max_results`."""
        scope = self._scope(app_name, user_id)
        if not isinstance(query, str):
            raise InvalidInputError(f"query must be a string, got {type(query).__name__}")
        with self._operation("search_memory") as span:
            terms = query_terms(query)
            span.set_attribute("ifriend.query_words", len(terms))
            hits = await self.store.search(scope, terms, self.limits.max_results) if terms else []
            hits.sort(key=rank_key, reverse=True)
            hits = hits[: self.limits.max_results]
            span.set_attribute("ifriend.results", len(hits))
            return SearchMemoryResponse(memories=[entry_of_hit(h) for h in hits])

    async def delete_memory(
        self, *, app_name: str, user_id: str, memory_id: str | None = None
    ) -> None:
        """Remove one entry; its id is not stored again for this user (as in ADK)."""
        scope = self._scope(app_name, user_id)
        if not memory_id:
            return
        validate_id("memory id", memory_id, self.limits.ids)
        with self._operation("delete_memory") as span:
            span.set_attribute("ifriend.found", await self.store.delete(scope, memory_id))


def _unique(records: Iterable[MemoryRecord]) -> list[MemoryRecord]:
    """The first record of each id (ADK keeps the first of a repeated event)."""
    seen: dict[str, MemoryRecord] = {}
    for record in records:
        seen.setdefault(record.memory_id, record)
    return list(seen.values())
