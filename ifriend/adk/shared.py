"""One settings file's services as ADK's server holds them: connected on first use, closed
with the event loop."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

from ..app import Services
from ..config import Settings
from ..errors import IfriendError
from ..telemetry.setup import TelemetryLease, start_telemetry
from .lazy import LazyMemoryService, LazySessionService

log = logging.getLogger("ifriend.adk")


class SharedServices:
    """One settings file's `Services`, connected on first use in the running event loop.

    The connections belong to that loop: a task waits on it and closes them when the
    loop ends (`asyncio.run`, as uvicorn uses, cancels it then). Used from a new loop
    after the old one ended, they connect again.
    """

    def __init__(self, settings: Settings, *, uri: str) -> None:
        self.uri = uri
        self.services = Services(settings)
        self.session_service = LazySessionService(self)
        self.memory_service = LazyMemoryService(self)
        # Now, before ADK sets up its own tracer provider: ADK then adds its span
        # processors (its web UI's traces) to the routing provider ifriend installs when
        # [telemetry] exports, which hands them every App's spans (see telemetry.setup).
        self._telemetry: TelemetryLease | None = start_telemetry(settings, self.services.telemetry)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._stack: AsyncExitStack | None = None
        self._closer: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._stack is not None

    async def ready(self) -> Services:
        """The services, connected (once per loop; concurrent first callers wait for it)."""
        loop = asyncio.get_running_loop()
        if self._stack is not None and self._loop is loop:
            return self.services
        if self._loop is not loop:
            self._adopt(loop)
        assert self._lock is not None
        async with self._lock:
            if self._stack is None:
                await self._open(loop)
        return self.services

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        old = self._loop
        if old is not None and old.is_running():
            raise IfriendError(
                f"the ifriend services of {self.uri!r} are connected in another running event "
                "loop; use them from that loop only"
            )
        if self._stack is not None:
            log.warning("ifriend services of %s: their event loop ended without closing them", self.uri)
        self._loop, self._lock, self._stack, self._closer = loop, asyncio.Lock(), None, None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._telemetry is None:
            self._telemetry = start_telemetry(self.services.settings, self.services.telemetry)
        async with AsyncExitStack() as stack:
            await self.services.open_services(stack)
            self._stack = stack.pop_all()
        self._closer = loop.create_task(self._close_with_loop(), name="ifriend.adk: close with the loop")
        s = self.services.settings
        log.info(
            "ifriend services connected (sessions: %s, memory: %s, settings: %s)",
            s.session.backend, s.memory.backend, s.source,
        )

    async def _close_with_loop(self) -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            if self._closer is asyncio.current_task():
                self._closer = None
                await self._shutdown()
            raise

    async def close(self) -> None:
        """Close the connections and flush telemetry; the next call connects again."""
        closer, self._closer = self._closer, None
        if closer is not None and closer is not asyncio.current_task():
            closer.cancel()
        await self._shutdown()

    async def _shutdown(self) -> None:
        stack, self._stack = self._stack, None
        lease, self._telemetry = self._telemetry, None
        try:
            if stack is not None:
                await stack.aclose()
                log.info("ifriend services closed (settings: %s)", self.services.settings.source)
        finally:
            if lease is not None:
                await lease.release()
