"""The client every Redis store uses: scripts, deadlines, and the mapping of failures.

Every store call is one `execute` inside `bounded()`: the ops go out in one pipelined
send (`connections.Node.exchange`), or, with `cluster = true`, one send per master
holding their slots (`cluster.Cluster.exchange`). The connections are shared by every
client of the process with the same connection settings (`shared`).

`RedisClient.redis` is a full redis-py client (a `RedisCluster` with `cluster = true`),
with a pool of its own, for tests and tools.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from types import ModuleType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ifriend.plugin_api import BackendTimeoutError, BackendUnavailableError, PluginError, telemetry

from . import scripts, shared
from .cluster import topology_error
from .connections import Op, errors, new_pool
from .settings import RedisSettings

__all__ = ["INSTALL_HINT", "Op", "RedisClient", "import_redis", "script_sha"]

INSTALL_HINT = "pip install 'ifriend[redis]'"


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


class RedisClient:
    """The scripts, the shared connections, and a deadline around every store call.

    Deadlines come from `bounded()` (an `asyncio.timeout` around the whole call),
    not from socket timeouts. An exchange interrupted anywhere, by its deadline or
    a cancellation, disconnects its connection: no connection is ever used again
    with a reply of an earlier exchange still to be read.
    """

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._redis: Any = None
        self._transport: shared.Transport | None = None
        self._release: Callable[[], Awaitable[None]] | None = None
        self.scripts: dict[str, str] = dict(scripts.ALL)
        self.shas: dict[str, str] = {name: script_sha(text) for name, text in self.scripts.items()}
        # the attributes of every span of `bounded` (the span copies them): database
        # semantic conventions (system, server, database index), never a command's values
        self.span_attributes: dict[str, Any] = {
            "ifriend.tier": "redis",
            **_server_attributes(settings.url),
        }
        self._operation_attributes: dict[str, dict[str, Any]] = {}
        self._script_names = {sha: name for name, sha in self.shas.items()}
        self._named: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}

    @property
    def redis(self) -> Any:
        """A redis-py client with a pool of its own, for anything off the store's paths
        (tests, tools); built on first use (no I/O). The store never uses it."""
        if self._redis is None:
            aioredis = import_redis()
            s = self.settings
            if s.cluster:
                self._redis = aioredis.RedisCluster.from_url(
                    s.url,
                    socket_timeout=s.timeout_seconds,
                    socket_connect_timeout=s.timeout_seconds,
                    max_connections=s.max_connections,
                    **s.tls_kwargs(),
                )
            else:
                pool = new_pool(s, s.url, socket_timeout=s.timeout_seconds)
                self._redis = aioredis.Redis.from_pool(pool)
        return self._redis

    @property
    def transport(self) -> shared.Transport:
        """The shared connections (a `Node`, or a `Cluster`), taken on first use."""
        if self._transport is None:
            self._transport, self._release = shared.acquire(self.settings)
        return self._transport

    async def connect(self) -> None:
        """Check the server is the kind the settings say and load the scripts (one round trip).

        `TopologyError` (a `ConfigError`) for a cluster node with `cluster = false`, or
        a standalone server with `cluster = true`. Call it inside `bounded()`.
        """
        if self.settings.cluster:
            await self.load_scripts()  # reads the slot map first: refused by a standalone
            return
        info, *loaded = await self.exchange([("INFO", "cluster"), *self._script_loads()])
        text = info.decode(errors="replace") if isinstance(info, bytes | bytearray) else str(info)
        if "cluster_enabled:1" in text:
            raise topology_error(self.transport.address, is_cluster=True)
        self._raise_any(loaded)

    async def close(self) -> None:
        """Release the connections (the last user closes them); the next call takes them again."""
        release, self._release, self._transport = self._release, None, None
        client, self._redis = self._redis, None
        try:
            if release is not None:
                await release()
        finally:
            if client is not None:
                await client.aclose()

    def evalsha(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Op:
        """A command running script `name` (EVALSHA; loaded again after NOSCRIPT)."""
        return ("EVALSHA", self.shas[name], len(keys), *keys, *args)

    def _script_loads(self) -> list[Op]:
        return [("SCRIPT", "LOAD", text) for text in self.scripts.values()]

    async def load_scripts(self) -> None:
        """Load every script (on every master of a cluster)."""
        ops = self._script_loads()
        _sending(ops)
        for replies in await self.transport.broadcast(ops):
            self._raise_any(replies)

    async def execute(self, ops: Sequence[Op]) -> list[Any]:
        """Send `ops` in one round trip (pipelined, not a transaction); raise error replies.

        A script the server has forgotten (restart, SCRIPT FLUSH, a promoted replica)
        is loaded and the ops from the first NOSCRIPT on are sent again: every op is
        idempotent. Call it inside `bounded()`, which sets the deadline.
        """
        _sending(ops)
        replies = await (self._transport or self.transport).exchange(ops)
        for i, reply in enumerate(replies):
            if isinstance(reply, Exception):
                break
        else:
            return replies
        if isinstance(reply, errors().NoScriptError):
            await self.load_scripts()
            replies[i:] = await self.transport.exchange(ops[i:])
        self._raise_any(replies)
        return replies

    async def exchange(self, ops: Sequence[Op]) -> list[Any]:
        """One pipelined send of `ops` (per master, on a cluster); raw replies, errors as values."""
        _sending(ops)
        return await (self._transport or self.transport).exchange(ops)

    def _raise_any(self, replies: Sequence[Any]) -> None:
        for reply in replies:
            if isinstance(reply, Exception):
                if isinstance(reply, errors().AskError) and not self.settings.cluster:
                    # MOVED / ASK: a cluster node, configured as a standalone server
                    raise topology_error(self.transport.address, is_cluster=True) from reply
                raise reply

    def operation_attributes(self, operation: str) -> dict[str, Any]:
        """`span_attributes` plus `ifriend.call` (one dict per operation, kept)."""
        found = self._operation_attributes.get(operation)
        if found is None:
            found = {**self.span_attributes, telemetry.CALL: operation}
            self._operation_attributes[operation] = found
        return found

    def span_naming(self, ops: Sequence[Op]) -> tuple[str, dict[str, Any]]:
        """The span name and `db.*` attributes of a call that sent `ops` (Redis conventions):
        `EVALSHA append`, `PIPELINE probe` (a script and other commands), `PIPELINE GET`
        (several GETs), `PIPELINE 127.0.0.1:6379`; `MULTI` likewise for a transaction."""
        key = tuple(op[1] if op[0] == "EVALSHA" else op[0] for op in ops)
        found = self._named.get(key)
        if found is None:
            if len(self._named) > 1024:  # ops are a few fixed shapes; never grow without bound
                self._named.clear()
            found = self._named[key] = self._name_of(ops)
        return found

    def _name_of(self, ops: Sequence[Op]) -> tuple[str, dict[str, Any]]:
        commands = [_command_name(op) for op in ops]
        if len(commands) >= 2 and commands[0] == "MULTI" and commands[-1] == "EXEC":
            inner = commands[1:-1]
            if len(inner) == 1:
                operation, size = f"MULTI {inner[0]}", None
            else:
                operation, size = telemetry.batch_operation(inner, "MULTI")
        else:
            operation, size = telemetry.batch_operation(commands, "PIPELINE")
        scripts = {self._script_names.get(op[1], str(op[1])) for op in ops if op[0] == "EVALSHA"}
        attributes: dict[str, Any] = {telemetry.DB_OPERATION: operation}
        if size is not None:
            attributes[telemetry.DB_BATCH_SIZE] = size
        if len(scripts) == 1:
            target = attributes[telemetry.DB_PROCEDURE] = scripts.pop()
        else:
            target = self._server_target()
        return telemetry.span_name(operation, target, "redis"), attributes

    def _server_target(self) -> str | None:
        address = self.span_attributes.get(telemetry.SERVER_ADDRESS)
        port = self.span_attributes.get(telemetry.SERVER_PORT)
        return f"{address}:{port}" if address and port else address

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


class Bounded:
    """One store call: its span, its deadline, and its failures mapped (`RedisClient.bounded`).

    It runs on every call, so it is one class rather than `operation_span` and
    `asyncio.timeout` inside an `asynccontextmanager`: the span is started, not made
    current (nothing nests under it), named when it ends by the commands it sent
    (`RedisClient.span_naming`), and records a failure as `operation_span` does, by its
    type only.
    """

    __slots__ = ("_attributes", "_client", "_operation", "_span", "_timeout", "_token", "ops")

    def __init__(self, client: RedisClient, operation: str, attributes: dict[str, Any]) -> None:
        self._client = client
        self._operation = operation
        self._attributes = attributes
        self.ops: Sequence[Op] | None = None  # the first commands sent: they name the span

    async def __aenter__(self) -> Span:
        attributes = self._client.operation_attributes(self._operation)
        if self._attributes:
            attributes = {**attributes, **self._attributes}
        self._span = telemetry.tracer.start_span(
            self._client._server_target() or "redis",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        self._token = _in_flight.set(self)
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
            except errors().TimeoutError as raised:
                raise BackendTimeoutError(self._late()) from raised
            except errors().RedisError as raised:
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
            _in_flight.reset(self._token)
            if self.ops is not None:
                name, attributes = self._client.span_naming(self.ops)
                span.update_name(name)
                span.set_attributes(attributes)
            span.end()

    def _late(self) -> str:
        timeout = self._client.settings.timeout_seconds
        return f"redis did not answer {self._operation} within {timeout:g}s"


# Commands whose first argument is part of the name (`SCRIPT LOAD`, `CLUSTER SLOTS`).
_CONTAINERS = frozenset({"ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "MEMORY", "OBJECT", "SCRIPT", "XINFO"})


def _command_name(op: Op) -> str:
    name = str(op[0]).upper()
    if name in _CONTAINERS and len(op) > 1:
        return f"{name} {str(op[1]).upper()}"
    return name


_in_flight: ContextVar[Bounded | None] = ContextVar("ifriend_redis_call", default=None)


def _sending(ops: Sequence[Op]) -> None:
    """Tell the store call in flight (`bounded`) which commands it sends, to name its span."""
    call = _in_flight.get()
    if call is not None and call.ops is None:
        call.ops = ops


def _server_attributes(url: str) -> dict[str, Any]:
    """`db.system.name`, `server.address`, `server.port`, `db.namespace` of a redis URL."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        namespace = parse_qs(parts.query).get("db", ["0"])[-1]
        return telemetry.db_attributes("redis", address=parts.path or None, port=None, namespace=namespace)
    try:
        port = parts.port or 6379
    except ValueError:
        port = None
    return telemetry.db_attributes(
        "redis", address=parts.hostname, port=port, namespace=(parts.path.lstrip("/") or "0")
    )
