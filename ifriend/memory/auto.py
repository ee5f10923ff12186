"""`AutoMemory`: sessions go to long-term memory after their replies, in background tasks.

`[memory] auto_add`:
- `every_turn`: after each turn, the turn's new events (`add_events_to_memory`, only the
  events since the last add of that session in this process; the whole session the
  first time, which costs nothing for events already stored).
- `on_close`: once a session ends, all of it (`add_session_to_memory`). A session ends
  when `end_session` is called for it, when no turn reached it for
  `idle_close_seconds`, or when the App closes (`async with` exit, `ifriend run`
  stopping): then every session that had a turn since it was last added is added,
  within `drain_seconds`.

Nothing here is awaited by a turn: `after_turn` and `end_session` only schedule work.
Adds of one session run one at a time; a failure is logged (its type, never text or ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from cachetools import LRUCache
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig

logger = logging.getLogger("ifriend.memory")

Mode = Literal["off", "on_close", "every_turn"]
Key = tuple[str, str]  # (user_id, session_id)


class AutoMemory:
    """Schedules the adds `[memory] auto_add` asks for; `close()` drains them."""

    def __init__(
        self,
        *,
        mode: Mode,
        app_name: str,
        session_service: BaseSessionService,
        memory_service: BaseMemoryService,
        idle_close_seconds: float = 1800.0,
        drain_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.app_name = app_name
        self.sessions = session_service
        self.memory = memory_service
        self.idle_close_seconds = idle_close_seconds
        self.drain_seconds = drain_seconds
        self._clock = clock
        self._pending: dict[Key, float] = {}  # on_close: sessions with a turn not added yet
        self._added_until: LRUCache[Key, float] = LRUCache(maxsize=100_000)  # every_turn
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._again: set[Key] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # -- what channels and Conversations call ---------------------------------------------

    def after_turn(self, *, user_id: str, session_id: str) -> None:
        """A turn's reply has been handed to its channel: schedule what the mode asks."""
        if self._closed or self.mode == "off":
            return
        key = (user_id, session_id)
        if self.mode == "every_turn":
            self._schedule(key, self._add_new_events)
        else:
            self._pending[key] = self._clock()
            self._start_sweeper()

    def end_session(self, *, user_id: str, session_id: str) -> None:
        """The conversation is over (`on_close`): add the whole session now."""
        key = (user_id, session_id)
        if self._closed or self.mode != "on_close" or self._pending.pop(key, None) is None:
            return
        self._schedule(key, self._add_session)

    async def close(self) -> None:
        """Add every session still pending (`on_close`), then wait for the adds in flight."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for key in list(self._pending):
            del self._pending[key]
            self._schedule(key, self._add_session)
        running = set(self._running.values())
        if not running:
            return
        _, late = await asyncio.wait(running, timeout=self.drain_seconds)
        for task in late:
            task.cancel()
        if late:
            logger.warning("memory: %d session adds did not finish before close", len(late))
            await asyncio.wait(late)

    @property
    def busy(self) -> bool:
        """Whether adds are scheduled or running (for tests and shutdown)."""
        return bool(self._running)

    # -- the work -----------------------------------------------------------------------

    def _schedule(self, key: Key, work: Callable[[Key], Coroutine[Any, Any, None]]) -> None:
        if key in self._running:
            self._again.add(key)
            return
        self._running[key] = asyncio.get_running_loop().create_task(
            self._run(key, work), name="ifriend-memory-add"
        )

    async def _run(self, key: Key, work: Callable[[Key], Coroutine[Any, Any, None]]) -> None:
        try:
            while True:
                self._again.discard(key)
                try:
                    await work(key)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    logger.warning("memory: adding a session failed: %s", type(exc).__name__)
                if key not in self._again:
                    return
        finally:
            self._running.pop(key, None)

    async def _add_new_events(self, key: Key) -> None:
        user_id, session_id = key
        since = self._added_until.get(key)
        config = GetSessionConfig(after_timestamp=since) if since is not None else None
        session = await self.sessions.get_session(
            app_name=self.app_name, user_id=user_id, session_id=session_id, config=config
        )
        if session is None or not session.events:
            return
        await self.memory.add_events_to_memory(
            app_name=self.app_name, user_id=user_id, events=session.events, session_id=session_id
        )
        # Events at this very timestamp are read again next time (and stored once).
        self._added_until[key] = max(e.timestamp for e in session.events)

    async def _add_session(self, key: Key) -> None:
        user_id, session_id = key
        session = await self.sessions.get_session(
            app_name=self.app_name, user_id=user_id, session_id=session_id
        )
        if session is not None:
            await self.memory.add_session_to_memory(session)

    def _start_sweeper(self) -> None:
        if self._sweeper is None and self.idle_close_seconds > 0:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep(), name="ifriend-memory-idle"
            )

    async def _sweep(self) -> None:
        """End the sessions no turn reached for `idle_close_seconds`."""
        period = min(60.0, self.idle_close_seconds / 4)
        while True:
            await asyncio.sleep(period)
            idle_since = self._clock() - self.idle_close_seconds
            for key, last in list(self._pending.items()):
                if last <= idle_since:
                    self.end_session(user_id=key[0], session_id=key[1])
