"""The ADK service classes ADK's server holds: every call waits for the shared services to
be connected, then goes to the service an `App` on the same file would build."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session

if TYPE_CHECKING:
    from .shared import SharedServices


class LazySessionService(BaseSessionService):
    """ifriend's session service as ADK's server holds it: connects on first use."""

    def __init__(self, shared: SharedServices) -> None:
        self.shared = shared

    @property
    def service(self) -> BaseSessionService:
        """The service every call goes to (the one an `App` on the same file would build)."""
        return self.shared.services.session_service

    async def _ready(self) -> BaseSessionService:
        return (await self.shared.ready()).session_service

    async def connect(self) -> None:
        await self.shared.ready()

    async def close(self) -> None:
        """Close the connections this service shares with its memory service."""
        await self.shared.close()

    async def ping(self) -> None:
        service = await self._ready()
        ping = getattr(service, "ping", None)
        if ping is not None:
            await ping()

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        service = await self._ready()
        return await service.create_session(
            app_name=app_name, user_id=user_id, state=state, session_id=session_id
        )

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        service = await self._ready()
        return await service.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id, config=config
        )

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        service = await self._ready()
        return await service.list_sessions(app_name=app_name, user_id=user_id)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        service = await self._ready()
        await service.delete_session(app_name=app_name, user_id=user_id, session_id=session_id)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        service = await self._ready()
        return await service.get_user_state(app_name=app_name, user_id=user_id)

    async def append_event(self, session: Session, event: Event) -> Event:
        service = await self._ready()
        return await service.append_event(session, event)

    async def flush(self) -> None:
        if self.shared.connected:
            await self.service.flush()


class LazyMemoryService(BaseMemoryService):
    """ifriend's memory service as ADK's server holds it: connects on first use."""

    def __init__(self, shared: SharedServices) -> None:
        self.shared = shared

    @property
    def service(self) -> BaseMemoryService:
        """The service every call goes to (the one an `App` on the same file would build)."""
        return self.shared.services.memory_service

    async def _ready(self) -> BaseMemoryService:
        return (await self.shared.ready()).memory_service

    async def connect(self) -> None:
        await self.shared.ready()

    async def close(self) -> None:
        """Close the connections this service shares with its session service."""
        await self.shared.close()

    async def ping(self) -> None:
        service = await self._ready()
        ping = getattr(service, "ping", None)
        if ping is not None:
            await ping()

    async def add_session_to_memory(self, session: Session) -> None:
        service = await self._ready()
        await service.add_session_to_memory(session)

    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        service = await self._ready()
        await service.add_events_to_memory(
            app_name=app_name,
            user_id=user_id,
            events=events,
            session_id=session_id,
            custom_metadata=custom_metadata,
        )

    async def add_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        memories: Sequence[MemoryEntry],
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        service = await self._ready()
        await service.add_memory(
            app_name=app_name, user_id=user_id, memories=memories, custom_metadata=custom_metadata
        )

    async def search_memory(self, *, app_name: str, user_id: str, query: str) -> SearchMemoryResponse:
        service = await self._ready()
        return await service.search_memory(app_name=app_name, user_id=user_id, query=query)

    async def delete_memory(
        self, *, app_name: str, user_id: str, memory_id: str | None = None
    ) -> None:
        service = await self._ready()
        await service.delete_memory(app_name=app_name, user_id=user_id, memory_id=memory_id)
