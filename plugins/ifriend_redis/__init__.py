"""Built-in plugin: the `redis` session and memory backends (needs `pip install 'ifriend[redis]'`)."""

from __future__ import annotations

from typing import Any

from ifriend.plugin_api import BackendContext, hookimpl

from .client import RedisClient, import_redis
from .memory import RedisMemoryStore
from .settings import RedisSettings
from .store import Probe, RedisStore


def _redis_store(context: BackendContext) -> RedisStore:
    settings = context.parse(RedisSettings)
    import_redis()  # fail at start, naming the extra, if the client is missing
    return RedisStore(settings)


def _redis_memory_store(context: BackendContext) -> RedisMemoryStore:
    settings = context.parse(RedisSettings)  # the same [backends.redis] table
    import_redis()
    return RedisMemoryStore(settings)


@hookimpl
def register_session_backends(register: Any) -> None:
    register("redis", _redis_store)


@hookimpl
def register_memory_backends(register: Any) -> None:
    register("redis", _redis_memory_store)


__all__ = ["Probe", "RedisClient", "RedisMemoryStore", "RedisSettings", "RedisStore"]
