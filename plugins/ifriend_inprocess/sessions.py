"""`InProcessSessionStore`: sessions in dicts, the model the other session stores are tested against."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event

from ifriend.plugin_api import (
    AppendOutcome,
    AppendResult,
    EventRecord,
    Revision,
    SessionHeader,
    SessionKey,
    StoredSession,
    filter_events,
)


@dataclass(slots=True)
class _Log:
    incarnation: str
    last_update_time: float
    state: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)

    @property
    def revision(self) -> Revision:
        return Revision(self.incarnation, len(self.events))


class InProcessSessionStore:
    """Sessions in dicts; every operation completes without awaiting, hence atomically."""

    name = "memory"

    def __init__(self) -> None:
        self._sessions: dict[str, dict[str, dict[str, _Log]]] = {}
        self._app_state: dict[str, dict[str, Any]] = {}
        self._user_state: dict[tuple[str, str], dict[str, Any]] = {}

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    def _find(self, key: SessionKey) -> _Log | None:
        return self._sessions.get(key.app_name, {}).get(key.user_id, {}).get(key.session_id)

    def _apply_scopes(self, key: SessionKey, app_delta: dict, user_delta: dict) -> None:
        if app_delta:
            self._app_state.setdefault(key.app_name, {}).update(copy.deepcopy(app_delta))
        if user_delta:
            self._user_state.setdefault((key.app_name, key.user_id), {}).update(
                copy.deepcopy(user_delta)
            )

    def _snapshot(self, key: SessionKey, log: _Log, events: list[Event]) -> StoredSession:
        return StoredSession(
            key=key,
            revision=log.revision,
            last_update_time=log.last_update_time,
            state=log.state,
            app_state=self._app_state.get(key.app_name, {}),
            user_state=self._user_state.get((key.app_name, key.user_id), {}),
            events=events,
        )

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
        if self._find(key) is not None:
            raise AlreadyExistsError(f"Session with id {key.session_id} already exists.")
        self._apply_scopes(key, app_delta, user_delta)
        log = _Log(incarnation, created_at, copy.deepcopy(state))
        self._sessions.setdefault(key.app_name, {}).setdefault(key.user_id, {})[key.session_id] = log
        return self._snapshot(key, log, [])

    async def load(
        self,
        key: SessionKey,
        *,
        num_recent_events: int | None = None,
        after_timestamp: float | None = None,
    ) -> StoredSession | None:
        log = self._find(key)
        if log is None:
            return None
        return self._snapshot(key, log, filter_events(log.events, num_recent_events, after_timestamp))

    async def append(
        self, key: SessionKey, record: EventRecord, *, expected: Revision
    ) -> AppendResult:
        log = self._find(key)
        if log is None:
            raise SessionNotFoundError(f"Session {key.session_id} not found.")
        if record.event_id in log.event_ids:
            return AppendResult(AppendOutcome.DUPLICATE, log.revision, log.last_update_time)
        if expected != log.revision:
            raise StaleSessionError(
                "The session was modified in storage since it was loaded. "
                "Reload the session and retry."
            )
        self._apply_scopes(key, record.app_delta, record.user_delta)
        log.state.update(copy.deepcopy(record.session_delta))
        log.events.append(record.event)
        log.event_ids.add(record.event_id)
        log.last_update_time = record.timestamp
        return AppendResult(AppendOutcome.APPLIED, log.revision, log.last_update_time)

    async def delete(self, key: SessionKey) -> None:
        self._sessions.get(key.app_name, {}).get(key.user_id, {}).pop(key.session_id, None)

    async def list(self, app_name: str, user_id: str | None) -> list[SessionHeader]:
        users = self._sessions.get(app_name, {})
        selected = users.items() if user_id is None else [(user_id, users.get(user_id, {}))]
        return [
            SessionHeader(
                key=SessionKey(app_name, uid, sid),
                last_update_time=log.last_update_time,
                state=log.state,
                app_state=self._app_state.get(app_name, {}),
                user_state=self._user_state.get((app_name, uid), {}),
            )
            for uid, logs in selected
            for sid, log in logs.items()
        ]

    async def get_user_state(self, app_name: str, user_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._user_state.get((app_name, user_id), {}))
