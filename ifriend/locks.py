"""`KeyedLocks`: one FIFO asyncio lock per key, for as long as someone uses it."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass, field
from types import TracebackType


@dataclass(slots=True)
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class KeyedLocks:
    """One FIFO lock per key, dropped when nobody holds or awaits it.

    `async with locks.hold(key):` waits for the key's earlier holders, in the
    order they asked; a waiter that is cancelled leaves the queue.
    """

    def __init__(self) -> None:
        self._slots: dict[Hashable, _Slot] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def hold(self, key: Hashable) -> _Held:
        """`key`'s turn, as an async context manager."""
        return _Held(self._slots, key)


class _Held:
    # A class rather than @asynccontextmanager: inside a session append (which takes
    # one every time) it cost ~3-5 us uncontended where the generator cost ~9-11 us.
    __slots__ = ("_slots", "_key", "_slot")

    def __init__(self, slots: dict[Hashable, _Slot], key: Hashable) -> None:
        self._slots = slots
        self._key = key

    async def __aenter__(self) -> None:
        slot = self._slots.get(self._key)
        if slot is None:
            slot = self._slots[self._key] = _Slot()
        slot.users += 1
        self._slot = slot
        try:
            await slot.lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._slot.lock.release()
        self._leave()

    def _leave(self) -> None:
        self._slot.users -= 1
        if self._slot.users == 0:
            del self._slots[self._key]
