"""`SessionService`: ADK's session contract over any `SessionStore`."""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from google.adk.errors import StaleSessionError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions import _session_util
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from pydantic_core import PydanticSerializationError

from ..errors import InvalidEventError, InvalidStateError
from ..locks import KeyedLocks
from .. import telemetry
from ..telemetry.recorder import Operation, Recorder, current_recorder
from .codec import encode_event
from .store import (
    AppendOutcome,
    EventRecord,
    Revision,
    SessionKey,
    SessionStore,
    StoredSession,
)
from .validation import (
    SessionLimits,
    validate_event_size,
    validate_id,
    validate_read,
    validate_state,
    validate_timestamp,
)


class SessionService(BaseSessionService):
    """An ADK `BaseSessionService` whose storage is a `SessionStore`.

    Returned sessions hold fresh lists and state dicts but share `Event`
    objects with the store: treat events as immutable once appended.
    Concurrent appends through one `Session` object take turns in call order;
    two different copies of a session still race (the later writer is stale).
    """

    def __init__(
        self,
        store: SessionStore,
        *,
        backend: str | None = None,
        limits: SessionLimits | None = None,
        telemetry: Recorder | None = None,
    ) -> None:
        self.store = store
        self.backend = backend or store.name
        self.limits = limits or SessionLimits()
        # Keyed by id(): a Session is unhashable, and it stays alive (its id its own)
        # while an append through it holds or awaits the lock.
        self._appends = KeyedLocks()
        # The App's recorder; None: whichever is in flight (`current_recorder`).
        self.telemetry = telemetry

    def _operation(self, name: str) -> Operation:
        return (self.telemetry or current_recorder()).operation(name, backend=self.backend)

    async def connect(self) -> None:
        await self.store.connect()

    async def close(self) -> None:
        await self.store.close()

    async def ping(self) -> None:
        """One round trip to every server the store uses."""
        await self.store.ping()

    async def ready(self) -> None:
        """Raise if the store cannot serve now (a tiered store serves without Redis)."""
        ready = getattr(self.store, "ready", None)
        await (ready() if callable(ready) else self.store.ping())

    def _key(self, app_name: str, user_id: str, session_id: str) -> SessionKey:
        return SessionKey(
            validate_id("app_name", app_name, self.limits),
            validate_id("user_id", user_id, self.limits),
            validate_id("session_id", session_id, self.limits),
        )

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        if session_id is None or session_id == "":
            session_id = uuid.uuid4().hex
        key = self._key(app_name, user_id, session_id)
        with self._operation("ifriend.session.create_session"):
            state = {} if state is None else state
            if not isinstance(state, dict):
                raise InvalidStateError(f"state must be a dict, got {type(state).__name__}")
            validate_state(_persisted(state), self.limits)
            deltas = _session_util.extract_state_delta(state)
            stored = await self.store.create(
                key,
                incarnation=uuid.uuid4().hex,
                state=deltas["session"],
                app_delta=deltas["app"],
                user_delta=deltas["user"],
                created_at=time.time(),
            )
            return _to_session(stored)

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        key = self._key(app_name, user_id, session_id)
        num_recent_events, after_timestamp = validate_read(
            config.num_recent_events if config else None, config.after_timestamp if config else None
        )
        with self._operation("ifriend.session.get_session") as op:
            stored = await self.store.load(
                key, num_recent_events=num_recent_events, after_timestamp=after_timestamp
            )
            if stored is None:
                op.set_attributes({"ifriend.found": False, "ifriend.outcome": "not_found"})
                return None
            op.set_attribute("ifriend.events", len(stored.events))
            if "ifriend.events_read" not in op.attributes:  # a tiered store says what it read
                op.set_attribute("ifriend.events_read", len(stored.events))
            return _to_session(stored)

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        validate_id("app_name", app_name, self.limits)
        if user_id is not None:
            validate_id("user_id", user_id, self.limits)
        with self._operation("ifriend.session.list_sessions") as op:
            headers = await self.store.list(app_name, user_id)
            op.set_attribute("ifriend.sessions", len(headers))
            headers.sort(key=lambda h: (h.last_update_time, h.key.user_id, h.key.session_id))
            sessions = [
                Session.model_construct(
                    id=h.key.session_id,
                    app_name=h.key.app_name,
                    user_id=h.key.user_id,
                    state=_merge_scopes(h.state, h.app_state, h.user_state),
                    events=[],
                    last_update_time=h.last_update_time,
                )
                for h in headers
            ]
            return ListSessionsResponse(sessions=sessions)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        key = self._key(app_name, user_id, session_id)
        with self._operation("ifriend.session.delete_session"):
            await self.store.delete(key)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        validate_id("app_name", app_name, self.limits)
        validate_id("user_id", user_id, self.limits)
        with self._operation("ifriend.session.get_user_state"):
            return await self.store.get_user_state(app_name, user_id)

    async def append_event(self, session: Session, event: Event) -> Event:
        if event.partial:
            return event
        key = self._key(session.app_name, session.user_id, session.id)
        with self._operation("ifriend.session.append_event") as op:
            validate_id("event id", event.id, self.limits)
            validate_timestamp(event.id, event.timestamp)
            delta = event.actions.state_delta if event.actions else {}
            stored_delta = _persisted(delta)
            validate_state(stored_delta, self.limits)
            payload = _payload_of(event, stored_delta, self.limits)
            self._apply_temp_state(session, event)
            event = self._trim_temp_delta_state(event)
            deltas = _session_util.extract_state_delta(stored_delta)
            record = EventRecord(
                event=event,
                payload=payload,
                session_delta=deltas["session"],
                app_delta=deltas["app"],
                user_delta=deltas["user"],
            )
            # Appends through one Session object (ADK's run_live makes them from two
            # tasks) take turns in call order, each from the revision the last one left.
            async with self._appends.hold(id(session)):
                expected = await self._expected_revision(key, session)
                try:
                    result = await self.store.append(key, record, expected=expected)
                except StaleSessionError:
                    (self.telemetry or current_recorder()).count(
                        telemetry.STALE_WRITES, attributes={"ifriend.backend": self.backend}
                    )
                    raise
                applied = result.outcome is AppendOutcome.APPLIED
                op.set_attributes(
                    {
                        "ifriend.outcome": result.outcome.value,
                        "ifriend.events_written": int(applied),
                    }
                )
                if applied or all(e.id != event.id for e in session.events):
                    self._commit_event_to_session(session, event)
                # A duplicate (a retry after a lost reply) leaves the copy current only if it
                # stood just before the event; otherwise it keeps its old, stale revision.
                after_expected = Revision(expected.incarnation, expected.version + 1)
                if applied or result.revision == after_expected:
                    session.last_update_time = result.last_update_time
                    session._storage_update_marker = result.revision.marker
                return event

    async def _expected_revision(self, key: SessionKey, session: Session) -> Revision:
        """The revision the caller's copy stands at.

        Sessions this service returned carry it as their marker; for a session
        built by hand, it is the stored revision if the copy ends where the log does,
        else one no log has (version -1).
        """
        revision = Revision.from_marker(session._storage_update_marker)
        if revision is not None:
            return revision
        latest = await self.store.load(key, num_recent_events=1)
        if latest is None:
            raise SessionNotFoundError(f"Session {key.session_id} not found.")
        stored_last = latest.events[-1].id if latest.events else None
        copy_last = session.events[-1].id if session.events else None
        if stored_last != copy_last:
            # Not where the log stands: the store refuses it as stale unless the
            # event is a retry of one already stored.
            return Revision(latest.revision.incarnation, -1)
        return latest.revision


def _payload_of(event: Event, stored_delta: dict[str, Any], limits: SessionLimits) -> bytes:
    """The event as it will be stored (no `temp:` keys), checked before anything changes."""
    if event.actions and len(stored_delta) != len(event.actions.state_delta):
        actions = event.actions.model_copy(update={"state_delta": stored_delta})
        event = event.model_copy(update={"actions": actions})
    try:
        payload = encode_event(event)
    except (PydanticSerializationError, ValueError) as exc:
        raise InvalidEventError(
            f"event {event.id} cannot be serialized as JSON ({type(exc).__name__})"
        ) from None
    validate_event_size(payload, limits)
    return payload


def _persisted(state: dict[str, Any]) -> dict[str, Any]:
    """`state` without its `temp:` keys, which are never stored (so never validated)."""
    return {
        k: v for k, v in state.items() if not (isinstance(k, str) and k.startswith(State.TEMP_PREFIX))
    }


def _merge_scopes(
    state: dict[str, Any], app_state: dict[str, Any], user_state: dict[str, Any]
) -> dict[str, Any]:
    merged = copy.deepcopy(state)
    for k, v in app_state.items():
        merged[State.APP_PREFIX + k] = copy.deepcopy(v)
    for k, v in user_state.items():
        merged[State.USER_PREFIX + k] = copy.deepcopy(v)
    return merged


def _to_session(stored: StoredSession) -> Session:
    session = Session.model_construct(
        id=stored.key.session_id,
        app_name=stored.key.app_name,
        user_id=stored.key.user_id,
        state=_merge_scopes(stored.state, stored.app_state, stored.user_state),
        events=list(stored.events),
        last_update_time=stored.last_update_time,
    )
    session._storage_update_marker = stored.revision.marker
    return session
