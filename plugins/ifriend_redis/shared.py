"""One set of connections per Redis (or Redis Cluster) per event loop, shared by every user.

The session store, the memory store and the Slack dedupe of one process configured with
the same `[backends.redis]` connection settings use one `Node` (or `Cluster`) and its
pool. It is counted per user and closed when the last one releases it. Connections
belong to the loop they were made in: each loop has its own, so a client never outlives
its loop (every test runs its Apps in a loop of its own).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .cluster import Cluster
from .connections import Node
from .settings import RedisSettings

Transport = Node | Cluster
ConnectionKey = tuple[str, bool, float, int, tuple[tuple[str, object], ...]]


@dataclass
class _Shared:
    transport: Transport
    users: int = 0


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ConnectionKey, _Shared]] = (
    weakref.WeakKeyDictionary()
)


def connection_key(settings: RedisSettings) -> ConnectionKey:
    """The settings that change the connections (not the key prefix or the TTLs)."""
    tls = tuple(sorted(settings.tls_kwargs().items()))
    return (settings.url, settings.cluster, settings.timeout_seconds, settings.max_connections, tls)


def acquire(settings: RedisSettings) -> tuple[Transport, Callable[[], Awaitable[None]]]:
    """The running loop's transport for `settings` (made on first use; no I/O), and the
    coroutine function that releases it (the last release closes it)."""
    loop = asyncio.get_running_loop()
    key = connection_key(settings)
    shared_here = _by_loop.setdefault(loop, {})
    shared = shared_here.get(key)
    if shared is None:
        transport: Transport = Cluster(settings) if settings.cluster else Node(settings)
        shared = shared_here[key] = _Shared(transport)
    shared.users += 1
    released = False

    async def release() -> None:
        nonlocal released
        if released:
            return
        released = True
        shared.users -= 1
        if shared.users == 0:
            if shared_here.get(key) is shared:
                del shared_here[key]
            await shared.transport.close()

    return shared.transport, release


def users(settings: RedisSettings) -> int:
    """How many clients of the running loop hold the transport for `settings` (tests)."""
    shared = _by_loop.get(asyncio.get_running_loop(), {}).get(connection_key(settings))
    return shared.users if shared is not None else 0
