"""One Redis server: its connections, and the lean pipelined exchange with it.

`Node.exchange` takes a connection, writes every command in one send and reads one raw
reply per command (an error reply is kept as that command's reply). It is about 2.5x
faster at p50 and costs about 3.4x less CPU than redis-py's `Pipeline` for the same
commands (`perf/bench_redis_tier.py`, figures in perf/README.md). redis-py still makes,
connects (AUTH, SELECT, HELLO, TLS, unix sockets) and closes the connections.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Sequence
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .settings import RedisSettings

Op = tuple[Any, ...]
"""One command as sent: `("HGETALL", key)`, `("EVALSHA", sha, 3, *keys, *args)`.

Arguments are str, bytes, int or float. Replies are raw, in the connection's
protocol: redis-py 8 speaks RESP3, where HGETALL is a dict (a flat list in RESP2);
a script's reply is RESP2-shaped either way (flat lists).
"""

try:  # hiredis (the `redis[hiredis]` extra) packs in C, about twice as fast
    from hiredis import pack_command as _pack_command
except ImportError:
    _pack_command = None

_BIG = 4096  # arguments longer than this are not copied into a formatted chunk


def pack(ops: Sequence[Op]) -> bytes:
    """The commands in the Redis protocol (arrays of bulk strings), ready for one send."""
    if _pack_command is None:
        return pack_in_python(ops)
    return b"".join([_pack_command(op) for op in ops])


def pack_in_python(ops: Sequence[Op]) -> bytes:
    """`pack` without hiredis."""
    out: list[bytes] = []
    append = out.append
    for op in ops:
        append(b"*%d\r\n" % len(op))
        for arg in op:
            kind = type(arg)
            if kind is str:
                arg = arg.encode()
            elif kind is int:
                arg = b"%d" % arg
            elif kind is not bytes:
                arg = _encode(arg)
            if len(arg) > _BIG:
                append(b"$%d\r\n" % len(arg))
                append(arg)
                append(b"\r\n")
            else:
                append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


def _encode(arg: Any) -> bytes:
    # what hiredis accepts: str, int (not bool), float, bytes, memoryview
    if isinstance(arg, bool) or not isinstance(arg, str | int | float | bytes | memoryview):
        raise TypeError(f"a redis argument cannot be a {type(arg).__name__}")
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    return bytes(arg)


class Connections:
    """The store's connections: checked out of a redis-py pool once, then kept.

    Acquire and release are plain list operations; at `limit` connections a caller
    waits for the next release (its deadline is the call's). A connection a caller
    disconnected comes back too: sending on it connects it again.
    """

    def __init__(self, pool: Any, limit: int) -> None:
        self._pool = pool
        self._limit = limit
        self._idle: list[Any] = []
        self._count = 0
        self._waiters: deque[asyncio.Future[Any]] = deque()

    @property
    def size(self) -> int:
        """How many connections it holds, idle or in use."""
        return self._count

    async def acquire(self) -> Any:
        while True:
            if self._idle:
                return self._idle.pop()
            if self._count < self._limit:
                self._count += 1
                try:
                    return await self._pool.get_connection()
                except BaseException:
                    self._count -= 1
                    self._wake(None)  # a waiter may make one itself now
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                conn = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    # handed over just as we were cancelled: pass it on
                    conn = waiter.result()
                    if conn is None:
                        self._wake(None)
                    else:
                        self.release(conn)
                raise
            if conn is not None:
                return conn

    async def close(self) -> None:
        """Close every connection, in use or idle; callers still waiting get an error."""
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(errors().ConnectionError("the redis client was closed"))
        await self._pool.aclose()

    def release(self, conn: Any) -> None:
        if not self._wake(conn):
            self._idle.append(conn)

    def _wake(self, conn: Any) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False


class Node:
    """One server (a standalone Redis, or one node of a cluster) and its connections."""

    _made = itertools.count()

    def __init__(self, settings: RedisSettings, url: str | None = None) -> None:
        self.rank = next(Node._made)  # the order `exchange_each` takes connections in
        self.url = url or settings.url
        parts = urlsplit(self.url)
        self.address = f"{parts.hostname}:{parts.port or 6379}" if parts.scheme != "unix" else parts.path
        # No socket timeout: the caller's deadline (`RedisClient.bounded`) bounds every
        # call. A socket timeout would only duplicate it, and costs a task per send.
        pool = new_pool(settings, self.url, socket_timeout=None)
        self.connections = Connections(pool, settings.max_connections)

    def __repr__(self) -> str:
        return f"Node({self.address})"

    async def exchange(self, ops: Sequence[Op]) -> list[Any]:
        """One send of every command, then one raw reply each (error replies as values).

        A connection the server closed while it sat idle fails on send or on read
        with `ConnectionError`: it is connected again and the commands re-sent once
        (they are idempotent), as redis-py's `Retry(NoBackoff(), 1)` would. An
        exchange interrupted anywhere (deadline, cancellation) disconnects its
        connection: none is used again with an earlier reply still to be read.
        """
        connections = self.connections
        packed = pack(ops)
        conn = await connections.acquire()
        done = False
        try:
            if conn.is_connected and await conn.can_read():
                await conn.disconnect()  # closed by the server (EOF) or out of step
            try:
                replies = await _send_and_read(conn, packed, len(ops))
            except errors().ConnectionError:
                # redis-py disconnected it; sending again connects anew.
                replies = await _send_and_read(conn, packed, len(ops))
            done = True
            return replies
        finally:
            if not done:
                # Interrupted mid-exchange: replies may still be on their way.
                await conn.disconnect(nowait=True)
            connections.release(conn)

    async def broadcast(self, ops: Sequence[Op]) -> list[list[Any]]:
        """`exchange` as a cluster's is sent to each master: one list of replies."""
        return [await self.exchange(ops)]

    async def close(self) -> None:
        await self.connections.close()


async def exchange_each(groups: Sequence[tuple[Node, Sequence[Op]]]) -> list[Any]:
    """`Node.exchange` on several nodes at once, without a task per node: a connection
    of each is taken (in node order, so two callers never wait for each other), every
    send goes out, then every reply is read. One item per node: its replies, or the
    exception that node's exchange ended with (the others are unaffected)."""
    n = len(groups)
    results: list[Any] = [None] * n
    conns: list[Any] = [None] * n
    packed = [pack(ops) for _, ops in groups]
    pending = [False] * n  # a reply may still be on its way on conns[i]
    try:
        for i in sorted(range(n), key=lambda i: groups[i][0].rank):
            try:
                conns[i] = await groups[i][0].connections.acquire()
            except Exception as exc:
                results[i] = exc
        for i, conn in enumerate(conns):
            if conn is None:
                continue
            pending[i] = True
            try:
                if conn.is_connected and await conn.can_read():
                    await conn.disconnect()  # closed by the server (EOF) or out of step
                await conn.send_packed_command(packed[i], check_health=False)
            except errors().ConnectionError:
                packed[i] = None  # redis-py disconnected it: send again below
            except Exception as exc:
                results[i] = exc
        for i, conn in enumerate(conns):
            if conn is None or results[i] is not None:
                continue
            count = len(groups[i][1])
            try:
                try:
                    if packed[i] is None:
                        raise errors().ConnectionError("not sent")
                    results[i] = await _read(conn, count)
                except errors().ConnectionError:
                    results[i] = await _send_and_read(conn, pack(groups[i][1]), count)
                pending[i] = False
            except Exception as exc:
                results[i] = exc
        return results
    finally:
        for i, conn in enumerate(conns):
            if conn is not None:
                if pending[i]:
                    await conn.disconnect(nowait=True)
                groups[i][0].connections.release(conn)


async def _send_and_read(conn: Any, packed: bytes, n: int) -> list[Any]:
    await conn.send_packed_command(packed, check_health=False)
    return await _read(conn, n)


async def _read(conn: Any, n: int) -> list[Any]:
    replies: list[Any] = []
    for _ in range(n):
        try:
            replies.append(await conn.read_response())
        except _errors.ResponseError as exc:  # an error reply: the connection is in step
            replies.append(exc)
    return replies


def new_pool(settings: RedisSettings, url: str, *, socket_timeout: float | None) -> Any:
    """A redis-py `BlockingConnectionPool` for `url` with the settings' limits and timeouts."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    errors()
    return aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.max_connections,
        timeout=settings.timeout_seconds,
        socket_timeout=socket_timeout,
        socket_connect_timeout=settings.timeout_seconds,
        # One retry replaces a connection the server has closed (`exchange`
        # does the same for the store's calls).
        retry=Retry(NoBackoff(), 1),
        client_name="ifriend",
        **settings.tls_kwargs(),
    )


def node_url(url: str, host: str, port: int) -> str:
    """`url` (credentials, TLS, options kept) pointing at another server."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    host = f"[{host}]" if ":" in host else host
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


_errors: Any = None  # `redis.exceptions`, imported with the first pool (see `new_pool`)


def errors() -> ModuleType:
    """`redis.exceptions` (imported on first use: the plugin imports redis lazily)."""
    global _errors
    if _errors is None:
        from redis import exceptions

        _errors = exceptions
    return _errors
