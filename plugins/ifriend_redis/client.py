"""Connections, the lean pipelined exchange, deadlines, and the mapping of failures.

Every store call is one `exchange`: take a connection, write every command in one
send, read one raw reply per command (an error reply is kept as that command's
reply). redis-py's `Pipeline` and its pool checkout cost several hundred
microseconds of Python per round trip; this path costs a few tens.

redis-py still makes, connects (AUTH, SELECT, HELLO, TLS, unix sockets) and closes
the connections; `RedisClient.redis` is a full redis-py client, with a pool of its
own, for tests and tools.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
from collections import deque
from collections.abc import Sequence
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ifriend.errors import BackendTimeoutError, BackendUnavailableError, PluginError
from ifriend.telemetry import db_attributes, tracer

from . import scripts
from .settings import RedisSettings

INSTALL_HINT = "pip install 'ifriend[redis]'"

Op = tuple[Any, ...]
"""One command as sent: `("HGETALL", key)`, `("EVALSHA", sha, 3, *keys, *args)`.

Arguments are str, bytes, int or float. Replies are raw, in the connection's
protocol: redis-py 8 speaks RESP3, where HGETALL is a dict (a flat list in RESP2);
a script's reply is RESP2-shaped either way (flat lists).
"""


def import_redis() -> ModuleType:
    """`redis.asyncio`, or a `PluginError` naming the extra to install."""
    try:
        return importlib.import_module("redis.asyncio")
    except ImportError as exc:
        raise PluginError(
            f"the redis session backend needs the redis client: {INSTALL_HINT} ({exc})"
        ) from exc


def script_sha(text: str) -> str:
    """The SHA1 Redis names a script by (EVALSHA)."""
    return hashlib.sha1(text.encode()).hexdigest()


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
                waiter.set_exception(_errors.ConnectionError("the redis client was closed"))
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


class RedisClient:
    """The connections plus the scripts; every store call bounded by a deadline.

    Deadlines come from `bounded()` (an `asyncio.timeout` around the whole call),
    not from socket timeouts. An exchange interrupted anywhere, by its deadline or
    a cancellation, disconnects its connection: no connection is ever used again
    with a reply of an earlier exchange still to be read.
    """

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._redis: Any = None
        self._connections: Connections | None = None
        self.scripts: dict[str, str] = dict(scripts.ALL)
        self.shas: dict[str, str] = {name: script_sha(text) for name, text in self.scripts.items()}
        # the attributes of every span of `bounded` (the span copies them): database
        # semantic conventions (system, server, database index), never a command's values
        self.span_attributes: dict[str, Any] = {
            "ifriend.tier": "redis",
            **_server_attributes(settings.url),
        }
        self._operation_attributes: dict[str, dict[str, Any]] = {}

    @property
    def redis(self) -> Any:
        """A redis-py client with a pool of its own, for anything off the store's paths
        (tests, tools); built on first use (no I/O). The store never uses it."""
        if self._redis is None:
            aioredis = import_redis()
            pool = self._new_pool(socket_timeout=self.settings.timeout_seconds)
            self._redis = aioredis.Redis.from_pool(pool)
        return self._redis

    def _connect(self) -> Connections:
        # No socket timeout: `bounded` sets the deadline of every call. A socket
        # timeout would only duplicate it, and costs a task per send (wait_for).
        pool = self._new_pool(socket_timeout=None)
        self._connections = Connections(pool, self.settings.max_connections)
        return self._connections

    def _new_pool(self, *, socket_timeout: float | None) -> Any:
        aioredis = import_redis()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        _load_errors()
        s = self.settings
        return aioredis.BlockingConnectionPool.from_url(
            s.url,
            max_connections=s.max_connections,
            timeout=s.timeout_seconds,
            socket_timeout=socket_timeout,
            socket_connect_timeout=s.timeout_seconds,
            # One retry replaces a connection the server has closed (`exchange`
            # does the same for the store's calls).
            retry=Retry(NoBackoff(), 1),
            client_name="ifriend",
        )

    async def close(self) -> None:
        """Close every connection; the next call connects again."""
        connections, self._connections = self._connections, None
        client, self._redis = self._redis, None
        try:
            if connections is not None:
                await connections.close()
        finally:
            if client is not None:
                await client.aclose()

    def evalsha(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Op:
        """A command running script `name` (EVALSHA; loaded again after NOSCRIPT)."""
        return ("EVALSHA", self.shas[name], len(keys), *keys, *args)

    async def load_scripts(self) -> None:
        ops = [("SCRIPT", "LOAD", text) for text in self.scripts.values()]
        for reply in await self.exchange(ops):
            if isinstance(reply, Exception):
                raise reply

    async def execute(self, ops: Sequence[Op]) -> list[Any]:
        """Send `ops` in one round trip (pipelined, not a transaction); raise error replies.

        A script the server has forgotten (restart, SCRIPT FLUSH) is loaded and the
        ops from the first NOSCRIPT on are sent again: every op is idempotent.
        Call it inside `bounded()`, which sets the deadline.
        """
        replies = await self.exchange(ops)
        for i, reply in enumerate(replies):
            if isinstance(reply, Exception):
                break
        else:
            return replies
        if isinstance(reply, _errors.NoScriptError):
            await self.load_scripts()
            replies[i:] = await self.exchange(ops[i:])
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def exchange(self, ops: Sequence[Op]) -> list[Any]:
        """One send of every command, then one raw reply each (error replies as values).

        A connection the server closed while it sat idle fails on send or on read
        with `ConnectionError`: it is connected again and the commands re-sent once
        (they are idempotent), as redis-py's `Retry(NoBackoff(), 1)` would.
        """
        connections = self._connections or self._connect()
        packed = pack(ops)
        conn = await connections.acquire()
        done = False
        try:
            if conn.is_connected and await conn.can_read():
                await conn.disconnect()  # closed by the server (EOF) or out of step
            try:
                replies = await _send_and_read(conn, packed, len(ops))
            except _errors.ConnectionError:
                # redis-py disconnected it; sending again connects anew.
                replies = await _send_and_read(conn, packed, len(ops))
            done = True
            return replies
        finally:
            if not done:
                # Interrupted mid-exchange: replies may still be on their way.
                await conn.disconnect(nowait=True)
            connections.release(conn)

    def operation_attributes(self, operation: str) -> dict[str, Any]:
        """`span_attributes` plus `db.operation.name` (one dict per operation, kept)."""
        found = self._operation_attributes.get(operation)
        if found is None:
            found = self._operation_attributes[operation] = {
                **self.span_attributes,
                "db.operation.name": operation,
            }
        return found

    def bounded(self, operation: str, **attributes: Any) -> Bounded:
        """`async with client.bounded("probe") as span:` a span around one store call,
        its deadline, and redis errors mapped to ifriend's (`BackendTimeoutError`,
        `BackendUnavailableError`, without our data or the URL's password)."""
        return Bounded(self, operation, attributes)

    def describe(self, exc: BaseException) -> str:
        """`Type: message`, short, with the URL's password masked."""
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        password = self.settings.password
        if password:
            text = text.replace(password, "***")
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _send_and_read(conn: Any, packed: bytes, n: int) -> list[Any]:
    await conn.send_packed_command(packed, check_health=False)
    replies: list[Any] = []
    for _ in range(n):
        try:
            replies.append(await conn.read_response())
        except _errors.ResponseError as exc:  # an error reply: the connection is in step
            replies.append(exc)
    return replies


class Bounded:
    """One store call: its span, its deadline, and its failures mapped (`RedisClient.bounded`).

    It runs on every call, so it is one class rather than `operation_span` and
    `asyncio.timeout` inside an `asynccontextmanager`: the span is started, not made
    current (nothing nests under it), and records a failure as `operation_span` does,
    by its type only.
    """

    __slots__ = ("_attributes", "_client", "_operation", "_span", "_timeout")

    def __init__(self, client: RedisClient, operation: str, attributes: dict[str, Any]) -> None:
        self._client = client
        self._operation = operation
        self._attributes = attributes

    async def __aenter__(self) -> Span:
        if _errors is None:
            _load_errors()
        attributes = self._client.operation_attributes(self._operation)
        if self._attributes:
            attributes = {**attributes, **self._attributes}
        self._span = tracer.start_span(
            f"ifriend.redis.{self._operation}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        self._timeout = asyncio.timeout(self._client.settings.timeout_seconds)
        await self._timeout.__aenter__()
        return self._span

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self._span
        try:
            try:
                await self._timeout.__aexit__(exc_type, exc, tb)
                if exc is not None:
                    raise exc
            except TimeoutError:
                raise BackendTimeoutError(self._late()) from None
            except _errors.TimeoutError as raised:
                raise BackendTimeoutError(self._late()) from raised
            except _errors.RedisError as raised:
                # redis-py's messages name host:port and the failure, never our data.
                raise BackendUnavailableError(
                    f"redis {self._operation} failed: {self._client.describe(raised)}"
                ) from raised
            except OSError as raised:  # raised by a socket before redis-py wraps it
                raise BackendUnavailableError(
                    f"redis {self._operation} failed: {type(raised).__name__}"
                ) from None
        except BaseException as final:
            span.set_attribute("error.type", type(final).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
            raise
        finally:
            span.end()

    def _late(self) -> str:
        timeout = self._client.settings.timeout_seconds
        return f"redis did not answer {self._operation} within {timeout:g}s"


_errors: Any = None  # `redis.exceptions`, imported with the client (see `_new_pool`)


def _load_errors() -> None:
    global _errors
    if _errors is None:
        from redis import exceptions

        _errors = exceptions


def _server_attributes(url: str) -> dict[str, Any]:
    """`db.system`, `server.address`, `server.port`, `db.namespace` of a redis URL."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        namespace = parse_qs(parts.query).get("db", ["0"])[-1]
        return db_attributes("redis", address=parts.path or None, port=None, namespace=namespace)
    try:
        port = parts.port or 6379
    except ValueError:
        port = None
    return db_attributes(
        "redis", address=parts.hostname, port=port, namespace=(parts.path.lstrip("/") or "0")
    )
