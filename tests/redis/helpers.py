"""Helpers of the Redis tests: event records as the service builds them, a log of what the client sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from google.adk.events.event import Event, EventActions

from ifriend.sessions import EventRecord
from ifriend.sessions.codec import encode_event


def make_record(
    event_id: str | None = None,
    *,
    timestamp: float | None = None,
    state: dict[str, Any] | None = None,
    app: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    text: str = "hello",
) -> EventRecord:
    """An event record as `SessionService.append_event` would build it."""
    from google.genai import types

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
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta),
    )
    return EventRecord(
        event=event,
        payload=encode_event(event),
        session_delta=dict(state or {}),
        app_delta=dict(app or {}),
        user_delta=dict(user or {}),
    )


@dataclass
class CommandLog:
    """Every command and round trip the client sends while `recording`."""

    commands: list[str] = field(default_factory=list)
    round_trips: int = 0
    recording: bool = False

    def reset(self) -> None:
        self.commands.clear()
        self.round_trips = 0

    def listen(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Read what the client sends from the bytes on their way to the socket (no MONITOR
        on a shared server): one round trip per send, every command in it."""
        import hiredis
        from redis.asyncio.connection import AbstractConnection

        send_packed = AbstractConnection.send_packed_command

        async def counting_send(connection: Any, command: Any, check_health: bool = True) -> None:
            if self.recording:
                self.round_trips += 1
                data = command.encode() if isinstance(command, str) else command
                reader = hiredis.Reader()
                reader.feed(data if isinstance(data, bytes) else b"".join(data))
                while (sent := reader.gets()) is not False:
                    self.commands.append(sent[0].decode().upper())
            await send_packed(connection, command, check_health)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting_send)
