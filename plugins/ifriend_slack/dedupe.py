"""Which Slack posts were already taken, shared by the replicas of one deployment.

Slack delivers a post more than once: a retry when the ack was late (`X-Slack-Retry-Num`,
same `event_id`), and an `app_mention` plus a `message` event (two event ids) for a mention
in a channel. All of them carry the post's `team`, `channel` and `ts`, which together name
the post; the first replica to claim that name answers, the others drop the event.

With `[backends.redis]` configured, claims are Redis `SET key 1 NX EX ttl` (one round trip),
so every replica sees them; otherwise an in-process TTL cache (one replica only). The same
store keeps each DM's current session.

The Redis claims go through the process's shared Redis connections (those of the session
and memory stores, on a single server or a cluster). In a burst, a claim waits for a free
connection up to its deadline; only when Redis is really unreachable (refused, reset, no
answer in time) is the event handled without a claim (answering twice beats never
answering): counted in `ifriend.slack.dedupe_unavailable`, logged at most once a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from cachetools import TTLCache

from ifriend.plugin_api import BackendUnavailableError, ConfigError, telemetry

log = logging.getLogger("ifriend_slack")

SLACK_DEDUPLICATED = telemetry.counter(
    "ifriend.slack.deduplicated", "Slack events dropped as duplicates (retries, mention + message)"
)
SLACK_DEDUPE_UNAVAILABLE = telemetry.counter(
    "ifriend.slack.dedupe_unavailable", "Slack events handled without a dedupe claim: Redis was unreachable"
)


class SlackState(Protocol):
    """Claims of posts, and small values (a DM's current session) shared by replicas."""

    async def connect(self) -> None:
        """Check the store at start: a wrong setting raises, an outage only warns."""

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

    async def connect(self) -> None:
        pass

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
    """Claims as Redis `SET NX EX`, values as plain keys, under `{key_prefix}:slack:`.

    `redis` are `[backends.redis]` settings (url, key_prefix, cluster, timeout_seconds,
    max_connections...); the connections are the process's shared ones for them.
    """

    kind = "redis"
    warn_every_seconds = 60.0

    def __init__(self, *, ttl_seconds: int, **redis: Any) -> None:
        from pydantic import ValidationError

        from ifriend_redis import RedisClient, RedisSettings
        from ifriend_redis.client import import_redis

        import_redis()  # fail at start, naming the extra, if the client is missing
        try:
            settings = RedisSettings(**redis)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(["backends.redis", *(str(part) for part in first["loc"])])
            raise ConfigError("invalid setting", key=key, expected=first["msg"]) from None
        self.client = RedisClient(settings)
        self.prefix = f"{settings.key_prefix}:slack:"
        self.ttl_seconds = ttl_seconds
        self._warned_at = float("-inf")
        self._unwarned = 0

    async def connect(self) -> None:
        """A wrong topology (`cluster`) is a `TopologyError` now, not at the first post."""
        try:
            async with self.client.bounded("slack_connect"):
                await self.client.connect()
        except BackendUnavailableError as exc:
            self._warn("dedupe store unreachable (%s); handling events anyway", exc)

    async def claim(self, key: str) -> bool:
        try:
            async with self.client.bounded("slack_claim"):
                (claimed,) = await self.client.execute(
                    [("SET", f"{self.prefix}seen:{key}", b"1", "NX", "EX", self.ttl_seconds)]
                )
        except BackendUnavailableError as exc:
            telemetry.count(SLACK_DEDUPE_UNAVAILABLE, reason=type(exc).__name__)
            self._warn("dedupe store unreachable (%s); handling events anyway", exc)
            return True
        return claimed is not None

    async def get(self, key: str) -> str | None:
        try:
            async with self.client.bounded("slack_get"):
                (value,) = await self.client.execute([("GET", f"{self.prefix}{key}")])
        except BackendUnavailableError as exc:
            self._warn("slack state unreachable (%s)", exc)
            return None
        return value.decode() if value is not None else None

    async def set(self, key: str, value: str) -> None:
        try:
            async with self.client.bounded("slack_set"):
                await self.client.execute([("SET", f"{self.prefix}{key}", value.encode())])
        except BackendUnavailableError as exc:
            self._warn("slack state unreachable (%s)", exc)

    async def close(self) -> None:
        await self.client.close()

    def _warn(self, message: str, exc: BaseException) -> None:
        """Log at most once per `warn_every_seconds`, saying how many were not logged."""
        now = time.monotonic()
        if now - self._warned_at < self.warn_every_seconds:
            self._unwarned += 1
            return
        suffix = f" ({self._unwarned} more since the last warning)" if self._unwarned else ""
        log.warning(message + suffix, type(exc).__name__)
        self._warned_at, self._unwarned = now, 0


def build_state(
    mode: str, *, backends: Mapping[str, Mapping[str, Any]], ttl_seconds: int
) -> SlackState:
    """`mode` "redis", "memory", or "auto" (Redis when `[backends.redis]` is configured)."""
    redis = backends.get("redis")
    if mode == "redis" or (mode == "auto" and redis is not None):
        if redis is None:
            raise ConfigError(
                "the Slack dedupe store needs Redis",
                key="channels.slack.dedupe",
                value="redis",
                expected='a [backends.redis] table with url, or dedupe = "memory"',
            )
        return RedisState(ttl_seconds=ttl_seconds, **redis)
    return MemoryState(ttl_seconds=ttl_seconds)
