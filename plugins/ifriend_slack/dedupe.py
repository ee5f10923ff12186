"""Which Slack posts were already taken, shared by the replicas of one deployment.

Slack delivers a post more than once: a retry when the ack was late (`X-Slack-Retry-Num`,
same `event_id`), and an `app_mention` plus a `message` event (two event ids) for a mention
in a channel. All of them carry the post's `team`, `channel` and `ts`, which together name
the post; the first replica to claim that name answers, the others drop the event.

With `[backends.redis]` configured, claims are Redis `SET key 1 NX EX ttl` (one round trip),
so every replica sees them; otherwise an in-process TTL cache (one replica only). The same
store keeps each DM's current session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from cachetools import TTLCache

log = logging.getLogger("ifriend_slack")


class SlackState(Protocol):
    """Claims of posts, and small values (a DM's current session) shared by replicas."""

    async def claim(self, key: str) -> bool:
        """True the first time `key` is claimed within the TTL, False afterwards."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str) -> None: ...

    async def close(self) -> None: ...


class MemoryState:
    """Claims in an in-process TTL cache: right for one replica."""

    kind = "memory"

    def __init__(self, *, ttl_seconds: float, max_entries: int = 100_000) -> None:
        self._claims: TTLCache[str, bool] = TTLCache(maxsize=max_entries, ttl=ttl_seconds)
        self._values: TTLCache[str, str] = TTLCache(maxsize=max_entries, ttl=30 * 86400)

    async def claim(self, key: str) -> bool:
        if key in self._claims:
            return False
        self._claims[key] = True
        return True

    async def get(self, key: str) -> str | None:
        return self._values.get(key)

    async def set(self, key: str, value: str) -> None:
        self._values[key] = value

    async def close(self) -> None:
        self._claims.clear()


class RedisState:
    """Claims as Redis `SET NX EX`, values as plain keys, under `{key_prefix}:slack:`."""

    kind = "redis"

    def __init__(
        self, *, url: str, key_prefix: str, ttl_seconds: int, timeout_seconds: float = 2.0
    ) -> None:
        self.url = url
        self.prefix = f"{key_prefix}:slack:"
        self.ttl_seconds = ttl_seconds
        self.timeout_seconds = timeout_seconds
        self._redis: Any = None

    def _client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout_seconds,
                socket_connect_timeout=self.timeout_seconds,
            )
        return self._redis

    async def claim(self, key: str) -> bool:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                claimed = await self._client().set(
                    f"{self.prefix}seen:{key}", b"1", nx=True, ex=self.ttl_seconds
                )
        except Exception as exc:  # answering twice beats never answering
            log.warning("dedupe store unreachable (%s); handling the event anyway", type(exc).__name__)
            return True
        return bool(claimed)

    async def get(self, key: str) -> str | None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                value = await self._client().get(f"{self.prefix}{key}")
        except Exception as exc:
            log.warning("slack state unreachable (%s)", type(exc).__name__)
            return None
        return value.decode() if value is not None else None

    async def set(self, key: str, value: str) -> None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self._client().set(f"{self.prefix}{key}", value.encode())
        except Exception as exc:
            log.warning("slack state unreachable (%s)", type(exc).__name__)

    async def close(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.aclose()


def build_state(
    mode: str, *, backends: Mapping[str, Mapping[str, Any]], ttl_seconds: int
) -> SlackState:
    """`mode` "redis", "memory", or "auto" (Redis when `[backends.redis]` is configured)."""
    redis = backends.get("redis")
    if mode == "redis" or (mode == "auto" and redis is not None):
        if redis is None:
            from ifriend.errors import ConfigError

            raise ConfigError(
                "the Slack dedupe store needs Redis",
                key="channels.slack.dedupe",
                value="redis",
                expected='a [backends.redis] table with url, or dedupe = "memory"',
            )
        return RedisState(
            url=str(redis.get("url", "redis://127.0.0.1:6379/0")),
            key_prefix=str(redis.get("key_prefix", "ifriend")),
            ttl_seconds=ttl_seconds,
            timeout_seconds=float(redis.get("timeout_seconds", 2.0)),
        )
    return MemoryState(ttl_seconds=ttl_seconds)
