"""Built-in plugin: the `tiered` session backend (LRU over Redis over MySQL)."""

from __future__ import annotations

from ifriend.plugin_api import BackendContext, ConfigError, PluginError, hookimpl

from .cache import SessionCache
from .settings import TieredSettings
from .store import TieredStore

_REDIS_METHODS = ("probe", "hydrate", "hydrate_scope_state", "mirror_append", "mirror_scope_state",
                  "invalidate", "grant_lease", "healthy", "require_replica_acks")
_MYSQL_METHODS = ("mark_for_repair", "redis_trust", "clear_repairs", "begin_outage",
                  "extend_outage", "end_outage")


def _require(store: object, backend: str, role: str, methods: tuple[str, ...]) -> None:
    missing = [m for m in methods if not callable(getattr(store, m, None))]
    if missing:
        raise PluginError(
            f"session backend {backend!r} cannot be the {role} tier of 'tiered': "
            f"it lacks {', '.join(missing)}"
        )


def build_tiered(context: BackendContext) -> TieredStore:
    settings = context.parse(TieredSettings)
    redis = context.session_store(settings.redis_backend)
    mysql = context.session_store(settings.mysql_backend)
    _require(redis, settings.redis_backend, "Redis", _REDIS_METHODS)
    _require(mysql, settings.mysql_backend, "MySQL", _MYSQL_METHODS)
    redis_timeout_ms = int(getattr(getattr(redis, "settings", None), "timeout_seconds", 2.0) * 1000)
    lease_ms = settings.lease_ms if settings.lease_ms is not None else redis_timeout_ms * 3 // 4
    if lease_ms > redis_timeout_ms:
        raise ConfigError(
            "the Redis lease must not outlast the Redis timeout (a paused Redis must lose "
            "its lease before any write to it times out)",
            source=context.settings.origin("backends", "tiered", "lease_ms"),
            key="backends.tiered.lease_ms",
            value=lease_ms,
            expected=f"at most {redis_timeout_ms} (backends.{settings.redis_backend}.timeout_seconds)",
        )
    redis_settings = getattr(redis, "settings", None)
    wait_replicas = settings.wait_replicas
    if wait_replicas is None:
        wait_replicas = 1 if getattr(redis_settings, "cluster", False) else 0
    if wait_replicas and settings.wait_timeout_ms >= redis_timeout_ms:
        raise ConfigError(
            "waiting for Redis replicas must end before the Redis timeout",
            source=context.settings.origin("backends", "tiered", "wait_timeout_ms"),
            key="backends.tiered.wait_timeout_ms",
            value=settings.wait_timeout_ms,
            expected=f"less than {redis_timeout_ms} (backends.{settings.redis_backend}.timeout_seconds)",
        )
    redis.require_replica_acks(wait_replicas, settings.wait_timeout_ms)  # type: ignore[attr-defined]
    return TieredStore(
        redis=redis,  # type: ignore[arg-type]
        mysql=mysql,  # type: ignore[arg-type]
        cache=SessionCache(max_sessions=settings.lru_max_sessions, max_bytes=settings.lru_max_bytes),
        lease_ms=lease_ms,
        redis_retry_seconds=settings.redis_retry_seconds,
        clock_skew_ms=settings.clock_skew_ms,
    )


@hookimpl
def register_session_backends(register) -> None:
    register("tiered", build_tiered)


__all__ = ["SessionCache", "TieredSettings", "TieredStore"]
