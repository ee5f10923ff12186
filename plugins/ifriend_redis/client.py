"""The redis-py client, its deadlines, and the mapping of its failures to ifriend's errors."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from ifriend.errors import BackendTimeoutError, BackendUnavailableError, PluginError
from ifriend.telemetry import operation_span

from . import scripts
from .settings import RedisSettings

INSTALL_HINT = "pip install 'ifriend[redis]'"

Op = Callable[[Any], Any]
"""Queues one command on a redis-py pipeline: `lambda p: p.hgetall(key)`."""


def import_redis() -> ModuleType:
    """`redis.asyncio`, or a `PluginError` naming the extra to install."""
    try:
        return importlib.import_module("redis.asyncio")
    except ImportError as exc:
        raise PluginError(
            f"the redis session backend needs the redis client: {INSTALL_HINT} ({exc})"
        ) from exc


class RedisClient:
    """One connection pool plus the registered scripts; every call bounded by a deadline."""

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        self._redis: Any = None
        self.scripts: dict[str, Any] = {}

    @property
    def redis(self) -> Any:
        """The `redis.asyncio.Redis` client, built on first use (no I/O)."""
        if self._redis is None:
            self._redis = self._build()
        return self._redis

    def _build(self) -> Any:
        aioredis = import_redis()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        s = self.settings
        pool = aioredis.BlockingConnectionPool.from_url(
            s.url,
            max_connections=s.max_connections,
            timeout=s.timeout_seconds,
            socket_timeout=s.timeout_seconds,
            socket_connect_timeout=s.timeout_seconds,
            # One retry at most: it replaces a pooled connection the server has
            # closed. Every script is idempotent, so a re-sent one is harmless.
            retry=Retry(NoBackoff(), 1),
            client_name="ifriend",
        )
        client = aioredis.Redis.from_pool(pool)
        self.scripts = {name: client.register_script(text) for name, text in scripts.ALL.items()}
        return client

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    def evalsha(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Op:
        """An op running script `name` (EVALSHA; loaded again after NOSCRIPT)."""
        self.redis  # noqa: B018 - builds the client, which registers the scripts
        sha = self.scripts[name].sha
        return lambda p: p.evalsha(sha, len(keys), *keys, *args)

    async def load_scripts(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for script in self.scripts.values():
            pipe.script_load(script.script)
        await pipe.execute()

    async def execute(self, ops: Sequence[Op]) -> list[Any]:
        """Run `ops` in one pipelined round trip (not a transaction); raise redis errors.

        A script the server has forgotten (restart, SCRIPT FLUSH) is loaded and the
        ops from the first NOSCRIPT on are sent again: every op is idempotent.
        """
        from redis.exceptions import NoScriptError

        results = await self._send(ops)
        first = next((i for i, r in enumerate(results) if isinstance(r, NoScriptError)), None)
        if first is not None:
            await self.load_scripts()
            results[first:] = await self._send(ops[first:])
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def _send(self, ops: Sequence[Op]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for op in ops:
            op(pipe)
        return list(await pipe.execute(raise_on_error=False))

    @asynccontextmanager
    async def bounded(self, operation: str, **attributes: Any) -> AsyncIterator[Any]:
        """A span around one store call, its deadline, and redis errors mapped to ifriend's."""
        from redis import exceptions as rex

        timeout = self.settings.timeout_seconds
        with operation_span(
            f"ifriend.redis.{operation}",
            **{"ifriend.tier": "redis", "db.system": "redis", **attributes},
        ) as span:
            try:
                async with asyncio.timeout(timeout):
                    yield span
            except TimeoutError:
                raise BackendTimeoutError(
                    f"redis did not answer {operation} within {timeout:g}s"
                ) from None
            except rex.TimeoutError as exc:
                raise BackendTimeoutError(
                    f"redis did not answer {operation} within {timeout:g}s"
                ) from exc
            except rex.RedisError as exc:
                # redis-py's messages name host:port and the failure, never our data.
                raise BackendUnavailableError(
                    f"redis {operation} failed: {self.describe(exc)}"
                ) from exc
            except OSError as exc:  # raised by a socket before redis-py wraps it
                raise BackendUnavailableError(
                    f"redis {operation} failed: {type(exc).__name__}"
                ) from None

    def describe(self, exc: BaseException) -> str:
        """`Type: message`, short, with the URL's password masked."""
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        password = self.settings.password
        if password:
            text = text.replace(password, "***")
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

