"""Helpers of the session contract tests (`test_create.py`, `test_events.py`, ...).

The reference is `google.adk.sessions.InMemorySessionService`; ifriend differs where
DESIGN.md says so: a write from a stale copy raises `StaleSessionError`, an event is
deduplicated on its id, and ids, state and event sizes are validated before any write.
"""

from __future__ import annotations

import time

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.genai import types

USER = "u1"


def event(
    *,
    author: str = "user",
    text: str | None = "hi",
    state: dict | None = None,
    timestamp: float | None = None,
    **fields,
) -> Event:
    return Event(
        author=author,
        invocation_id="inv-1",
        content=types.Content(role="user", parts=[types.Part(text=text)]) if text else None,
        actions=EventActions(state_delta=state or {}),
        timestamp=time.time() if timestamp is None else timestamp,
        **fields,
    )


async def get(service: BaseSessionService, app: str, sid: str, user: str = USER, **config):
    return await service.get_session(
        app_name=app,
        user_id=user,
        session_id=sid,
        config=GetSessionConfig(**config) if config else None,
    )


def ids(events: list[Event]) -> list[str]:
    return [e.id for e in events]
