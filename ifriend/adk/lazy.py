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


class _OnShared:
    """What both services have: the shared services behind them, connected on first use."""

    _attribute: str  # the `Services` attribute calls go to

    def __init__(self, shared: SharedServices) -> None:
        self.shared = shared

    @property
    def service(self) -> Any:
        """The service every call goes to (the one an `App` on the same file would build)."""
        return getattr(self.shared.services, self._attribute)

    async def _ready(self) -> Any:
        return getattr(await self.shared.ready(), self._attribute)

    async def connect(self) -> None:
        await self.shared.ready()

    async def close(self) -> None:
        """Close the connections the session and memory services share."""
        await self.shared.close()

    async def ping(self) -> None:
        ping = getattr(await self._ready(), "ping", None)
        if ping is not None:
            await ping()


class LazySessionService(_OnShared, BaseSessionService):
    """ifriend's session service as ADK's server holds it: connects on first use."""

    _attribute = "session_service"

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


class LazyMemoryService(_OnShared, BaseMemoryService):
    """ifriend's memory service as ADK's server holds it: connects on first use."""

    _attribute = "memory_service"

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
