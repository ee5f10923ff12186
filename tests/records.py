"""Event records as the session service builds them, for the tests of the stores."""

from __future__ import annotations

from typing import Any

from google.adk.events.event import Event, EventActions
from google.genai import types

from ifriend.sessions import EventRecord
from ifriend.sessions.codec import encode_event


def make_record(
    event_id: str | None = None,
    *,
    timestamp: float | None = None,
    state: dict[str, Any] | None = None,
    app: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    text: str | None = "hello",
) -> EventRecord:
    """An event record as `SessionService.append_event` would build it (no content when
    `text` is None)."""
    kwargs: dict[str, Any] = {"author": "user", "invocation_id": "inv"}
    if event_id is not None:
        kwargs["id"] = event_id
    if timestamp is not None:
        kwargs["timestamp"] = timestamp
    delta = {
        **(state or {}),
        **{f"app:{k}": v for k, v in (app or {}).items()},
        **{f"user:{k}": v for k, v in (user or {}).items()},
    }
    event = Event(
        **kwargs,
        content=None if text is None else types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta),
    )
    return EventRecord(
        event=event,
        payload=encode_event(event),
        session_delta=dict(state or {}),
        app_delta=dict(app or {}),
        user_delta=dict(user or {}),
    )
