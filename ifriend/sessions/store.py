"""The tier contract: what a session storage backend implements.

`SessionService` (the ADK `BaseSessionService`) owns ADK's semantics: state
scopes, `temp:` trimming, validation, stale-writer detection, spans. A store
only keeps data, so one implementation of the contract serves every backend
(memory, Redis, MySQL and the tiered composition of them).

A store keeps, per session, an append-only event log and a revision: the
`incarnation` token minted when the session was created plus `version`, the
number of events appended since. Appends name the revision they expect and
are idempotent on the event id.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from google.adk.events.event import Event


@dataclass(frozen=True, slots=True)
class SessionKey:
    """Identifies one session."""

    app_name: str
    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class Revision:
    """Where a session's log stood when a copy of it was read."""

    incarnation: str
    version: int

    @property
    def marker(self) -> str:
        """The string ADK keeps in `Session._storage_update_marker`."""
        return f"{self.incarnation}:{self.version}"

    @classmethod
    def from_marker(cls, marker: str | None) -> Revision | None:
        """Parse a marker written by `marker`; None for anything else."""
        if not marker:
            return None
        incarnation, sep, version = marker.rpartition(":")
        if not sep or not version.isdigit():
            return None
        return cls(incarnation, int(version))


@dataclass(slots=True)
class StoredSession:
    """A session as a store returns it: scopes apart, events possibly filtered."""

    key: SessionKey
    revision: Revision
    last_update_time: float
    state: dict[str, Any] = field(default_factory=dict)
    app_state: dict[str, Any] = field(default_factory=dict)
    user_state: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    # Tiers that keep events as JSON may hand the raw payloads along, so a
    # composition can copy a session between tiers without re-serializing.
    payloads: list[bytes] | None = None
    # Versions of the app- and user-scoped state, for tiers that cache them.
    app_state_version: int = 0
    user_state_version: int = 0


@dataclass(frozen=True, slots=True)
class SessionHeader:
    """A session as listed: no events."""

    key: SessionKey
    last_update_time: float
    state: dict[str, Any]
    app_state: dict[str, Any]
    user_state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event to append, serialized once, with its state deltas split by scope."""

    event: Event
    payload: bytes
    session_delta: dict[str, Any]
    app_delta: dict[str, Any]
    user_delta: dict[str, Any]

    @property
    def event_id(self) -> str:
        return self.event.id

    @property
    def timestamp(self) -> float:
        return self.event.timestamp


class AppendOutcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did and the revision the log has after it."""

    outcome: AppendOutcome
    revision: Revision
    last_update_time: float
    # Versions the app and user state reached, for tiers that cache them.
    app_state_version: int | None = None
    user_state_version: int | None = None


@runtime_checkable
class SessionStore(Protocol):
    """A storage tier. Implementations must be safe for concurrent coroutines.

    `append` must be atomic: either the event, its state deltas and the new
    revision are all stored, or none of them. It raises `SessionNotFoundError`
    for an unknown session and `StaleSessionError` when `expected` is not the
    current revision; an event id already in the log returns `DUPLICATE` without
    writing (checked before the revision, so a retry after a lost reply succeeds).
    """

    name: str

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """One round trip to every server the store uses."""

    async def create(
        self,
        key: SessionKey,
        *,
        incarnation: str,
        state: dict[str, Any],
        app_delta: dict[str, Any],
        user_delta: dict[str, Any],
        created_at: float,
    ) -> StoredSession:
        """Create a session at revision (`incarnation`, 0); `AlreadyExistsError` if taken.

        The service mints `incarnation`, so every tier of a composition agrees on it.
        """

    async def load(
        self,
        key: SessionKey,
        *,
        num_recent_events: int | None = None,
        after_timestamp: float | None = None,
    ) -> StoredSession | None:
        """The session with (at most `num_recent_events` of) its events, or None."""

    async def append(
        self, key: SessionKey, record: EventRecord, *, expected: Revision
    ) -> AppendResult: ...

    async def delete(self, key: SessionKey) -> None:
        """Remove the session and its events; a no-op if absent."""

    async def list(self, app_name: str, user_id: str | None) -> list[SessionHeader]:
        """Every session of the user (of every user if None), in any order."""

    async def get_user_state(self, app_name: str, user_id: str) -> dict[str, Any]: ...


def filter_events(
    events: list[Event],
    num_recent_events: int | None,
    after_timestamp: float | None,
) -> list[Event]:
    """Apply `GetSessionConfig` filters as ADK does: the tail first, then the time."""
    if num_recent_events is not None:
        events = events[-num_recent_events:] if num_recent_events else []
    if after_timestamp is not None:
        i = len(events) - 1
        while i >= 0 and events[i].timestamp >= after_timestamp:
            i -= 1
        events = events[i + 1 :]
    return events
