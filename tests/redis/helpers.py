"""Helpers of the Redis tests: a log of what the client sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest


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
