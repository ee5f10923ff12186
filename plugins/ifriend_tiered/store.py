"""`TieredStore`: the LRU over Redis over MySQL, write-through.

MySQL is the truth: an append is acknowledged once MySQL committed it and Redis
either mirrored it (replicated, when replica acks are required) or can no longer
be believed by any replica (see `trust`). Redis answers reads in one round trip;
the LRU keeps parsed events so a read validates against Redis and fetches only a
missing tail.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any, Protocol

from ifriend.plugin_api import (
    AppendOutcome,
    AppendResult,
    BackendUnavailableError,
    EventRecord,
    Revision,
    SessionHeader,
    SessionKey,
    SessionStore,
    StoredSession,
    decode_events,
    filter_events,
    telemetry,
)

from .cache import CachedSession, SessionCache, estimate_nbytes
from .metrics import LRU_HITS, LRU_MISSES, REDIS_FALLBACKS, REHYDRATIONS
from .trust import RedisTrust

logger = logging.getLogger("ifriend.tiered")

# The floor a deleted session's tombstone carries: no copy of it is ever hydrated again
# until the tombstone expires (a re-created session is then served from MySQL meanwhile).
DELETED = 2**62


class RedisTier(SessionStore, Protocol):
    """What the tiered store needs from its Redis tier, beyond the store contract."""

    async def probe(self, key: SessionKey, known: Revision | None) -> Any: ...
    async def hydrate(self, stored: StoredSession) -> bool: ...
    async def hydrate_scope_state(
        self, app_name: str, user_id: str | None, state: dict[str, Any], version: int
    ) -> bool: ...
    async def mirror_append(self, key: SessionKey, record: EventRecord, revision_after: Revision) -> bool: ...
    async def mirror_scope_state(
        self, app_name: str, user_id: str | None, delta: dict[str, Any], version: int
    ) -> None: ...
    async def invalidate(
        self,
        key: SessionKey,
        *,
        floor: int | None = None,
        app_floor: int | None = None,
        user_floor: int | None = None,
        ttl: int | None = None,
    ) -> None: ...
    async def grant_lease(self, until_ms: int) -> bool: ...
    async def healthy(self) -> bool: ...
    def require_replica_acks(self, replicas: int, timeout_ms: int) -> None: ...


class MySQLTier(SessionStore, Protocol):
    """What the tiered store needs from its MySQL tier, beyond the store contract."""

    async def mark_for_repair(
        self, key: SessionKey, *, outage: str | None = None, outage_seconds: float = 0.0
    ) -> bool: ...
    async def redis_trust(self, limit: int) -> tuple[int, list[tuple[int, SessionKey]]]: ...
    async def clear_repairs(self, ids: list[int]) -> None: ...
    async def begin_outage(self, replica: str, seconds: float) -> None: ...
    async def extend_outage(self, replica: str, seconds: float) -> bool: ...
    async def end_outage(self, replica: str) -> None: ...


def _note(**attributes: Any) -> None:
    telemetry.note(attributes)


def _fallback(operation: str) -> None:
    """An operation served by MySQL alone because Redis is away, or not trusted."""
    telemetry.count(REDIS_FALLBACKS, attributes={"ifriend.operation": operation})


class TieredStore:
    """A `SessionStore` composing an LRU, a Redis tier and a MySQL tier."""

    name = "tiered"

    def __init__(
        self,
        *,
        redis: RedisTier,
        mysql: MySQLTier,
        cache: SessionCache,
        lease_ms: int = 1500,
        redis_retry_seconds: float = 1.0,
        clock_skew_ms: int = 100,
    ) -> None:
        self.redis = redis
        self.mysql = mysql
        self.cache = cache
        self.lease_ms = lease_ms
        self.redis_retry_seconds = redis_retry_seconds
        self.trust = RedisTrust(redis, mysql, lease_ms=lease_ms, clock_skew_ms=clock_skew_ms)
        self._redis_down_until = 0.0
        self._redis_down = False

    # -- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        """An unreachable Redis (an outage) degrades to MySQL; anything else, such as a
        wrong `cluster` setting (`TopologyError`), fails the start with nothing left open."""
        await self.mysql.connect()
        try:
            await self.redis.connect()
        except BackendUnavailableError as exc:
            self._redis_failed(exc)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        try:
            await self.trust.close()
        finally:
            try:
                await self.redis.close()
            finally:
                await self.mysql.close()

    async def ping(self) -> None:
        await self.mysql.ping()
        await self.redis.ping()

    async def ready(self) -> None:
        """MySQL answers: sessions are served (from MySQL alone while Redis is away)."""
        await self.mysql.ping()

    # -- Redis health ----------------------------------------------------------------------

    def _redis_usable(self) -> bool:
        return time.monotonic() >= self._redis_down_until

    def _redis_failed(self, exc: BaseException) -> None:
        self._redis_down_until = time.monotonic() + self.redis_retry_seconds
        _note(**{"ifriend.redis.degraded": True, "ifriend.redis.error": type(exc).__name__})
        if not self._redis_down:
            self._redis_down = True
            logger.warning(
                "Redis unreachable or unsafe (%s); serving sessions from MySQL until it answers again",
                type(exc).__name__,
            )

    def _redis_answered(self) -> None:
        if self._redis_down:
            self._redis_down = False
            logger.warning("Redis answers again")
        self.trust.touch()

    async def _distrust(
        self,
        key: SessionKey,
        *,
        floor: int,
        app_floor: int | None = None,
        user_floor: int | None = None,
        acknowledging: bool = True,
    ) -> None:
        """Make sure no replica believes a Redis copy of `key` older than a committed write.

        Tombstones the session in Redis; when Redis cannot be told, records the session
        for repair, starts this replica's outage and (when `acknowledging`) waits until
        no replica can still hold a lease granted before it.
        """
        if not self.trust.in_outage and self._redis_usable():
            try:
                await self.redis.invalidate(
                    key, floor=floor, app_floor=app_floor, user_floor=user_floor
                )
                return
            except BackendUnavailableError as exc:
                self._redis_failed(exc)
        _note(**{"ifriend.redis.repair_marked": True})
        try:
            in_outage = await self.trust.record_repair(key)
        except BackendUnavailableError:
            logger.error("could not record a session for Redis repair (MySQL unreachable)")
            raise
        if not in_outage:
            await self.trust.begin_outage()
        if acknowledging:
            await self.trust.wait_until_safe()

    # -- reads -----------------------------------------------------------------------------

    async def load(
        self,
        key: SessionKey,
        *,
        num_recent_events: int | None = None,
        after_timestamp: float | None = None,
    ) -> StoredSession | None:
        cached = self.cache.get(key)
        telemetry.count(LRU_HITS if cached is not None else LRU_MISSES)
        if not self.trust.believed():
            _note(**{"ifriend.redis.trusted": False})
            _fallback("load")
        elif self._redis_usable():
            try:
                probe = await self.redis.probe(key, cached.revision if cached else None)
                self._redis_answered()
                if not probe.lease:
                    probe = await self._probe_after_renewal(key, cached)
            except BackendUnavailableError as exc:
                self._redis_failed(exc)
                _fallback("load")
            else:
                if (
                    probe is not None
                    and probe.status != "miss"
                    and probe.app_state_version is not None
                    and probe.user_state_version is not None
                ):
                    entry = self._advance(key, cached, probe)
                    _note(**{"ifriend.tier": "lru" if probe.status == "current" else "redis",
                             "ifriend.lru": "current" if probe.status == "current"
                             else ("behind" if cached else "missing"),
                             "ifriend.events_read": len(probe.tail)})
                    return StoredSession(
                        key=key,
                        revision=entry.revision,
                        last_update_time=entry.last_update_time,
                        state=entry.state,
                        app_state=probe.app_state,
                        user_state=probe.user_state,
                        events=filter_events(entry.events, num_recent_events, after_timestamp),
                        app_state_version=probe.app_state_version,
                        user_state_version=probe.user_state_version,
                    )
        else:
            _fallback("load")
        return await self._load_from_mysql(key, num_recent_events, after_timestamp)

    async def _probe_after_renewal(self, key: SessionKey, cached: CachedSession | None) -> Any:
        """The probe again once the lease is renewed; None if Redis may not be believed."""
        try:
            renewed = await self.trust.renew()
        except BackendUnavailableError as exc:  # MySQL (or Redis) failed the check
            _note(**{"ifriend.redis.trust_error": type(exc).__name__})
            renewed = False
        if renewed:
            probe = await self.redis.probe(key, cached.revision if cached else None)
            if probe.lease:
                return probe
        _note(**{"ifriend.redis.trusted": False})
        return None

    def _advance(self, key: SessionKey, cached: CachedSession | None, probe: Any) -> CachedSession:
        if probe.status == "current" and cached is not None:
            entry = cached.at(probe.revision, probe.last_update_time, probe.state)
        else:
            tail = decode_events(probe.tail)
            tail_bytes = sum(len(p) for p in probe.tail)
            if cached is None:
                entry = CachedSession.of(
                    probe.revision, probe.last_update_time, probe.state, tail, estimate_nbytes(tail_bytes)
                )
            else:
                entry = cached.advanced(
                    probe.revision, probe.last_update_time, probe.state, tail, tail_bytes
                )
        self.cache.offer(key, entry)
        return entry

    async def _load_from_mysql(
        self, key: SessionKey, num_recent_events: int | None, after_timestamp: float | None
    ) -> StoredSession | None:
        stored = await self.mysql.load(key)
        _note(**{"ifriend.tier": "mysql"})
        if stored is None:
            self.cache.discard(key)
            return None
        payloads = stored.payloads or []
        _note(**{"ifriend.events_read": len(stored.events)})
        self.cache.offer(
            key,
            CachedSession.of(
                stored.revision,
                stored.last_update_time,
                stored.state,
                list(stored.events),
                estimate_nbytes(sum(len(p) for p in payloads)),
            ),
        )
        if self._redis_usable() and not self.trust.in_outage:
            try:
                await self._hydrate(stored)
            except BackendUnavailableError as exc:
                self._redis_failed(exc)
            else:
                _note(**{"ifriend.rehydrated": True})
                telemetry.count(REHYDRATIONS)
        stored.events = filter_events(stored.events, num_recent_events, after_timestamp)
        stored.payloads = None
        return stored

    async def _hydrate(self, stored: StoredSession) -> None:
        key = stored.key
        await self.redis.hydrate(stored)
        await self.redis.hydrate_scope_state(
            key.app_name, None, stored.app_state, stored.app_state_version
        )
        await self.redis.hydrate_scope_state(
            key.app_name, key.user_id, stored.user_state, stored.user_state_version
        )

    async def list(self, app_name: str, user_id: str | None) -> list[SessionHeader]:
        _note(**{"ifriend.tier": "mysql"})
        return await self.mysql.list(app_name, user_id)

    async def get_user_state(self, app_name: str, user_id: str) -> dict[str, Any]:
        _note(**{"ifriend.tier": "mysql"})
        return await self.mysql.get_user_state(app_name, user_id)

    # -- writes ----------------------------------------------------------------------------

    async def create(
        self,
        key: SessionKey,
        *,
        incarnation: str,
        state: dict[str, Any],
        app_delta: dict[str, Any],
        user_delta: dict[str, Any],
        created_at: float,
    ) -> StoredSession:
        _note(**{"ifriend.tier": "mysql"})
        stored = await self.mysql.create(
            key,
            incarnation=incarnation,
            state=state,
            app_delta=app_delta,
            user_delta=user_delta,
            created_at=created_at,
        )
        self.cache.offer(
            key,
            CachedSession.of(
                stored.revision, stored.last_update_time, dict(stored.state), [], estimate_nbytes(0)
            ),
        )
        if self._redis_usable():
            try:
                await self._hydrate(
                    StoredSession(
                        key=key,
                        revision=stored.revision,
                        last_update_time=stored.last_update_time,
                        state=stored.state,
                        app_state=stored.app_state,
                        user_state=stored.user_state,
                        payloads=[],
                        app_state_version=stored.app_state_version,
                        user_state_version=stored.user_state_version,
                    )
                )
            except BackendUnavailableError as exc:
                self._redis_failed(exc)
                _fallback("create")
            else:
                return stored
        else:
            _fallback("create")
        if app_delta or user_delta:
            await self._distrust(
                key,
                floor=0,
                app_floor=stored.app_state_version if app_delta else None,
                user_floor=stored.user_state_version if user_delta else None,
            )
        return stored

    async def append(
        self, key: SessionKey, record: EventRecord, *, expected: Revision
    ) -> AppendResult:
        _note(**{"ifriend.tier": "mysql"})
        try:
            result = await self.mysql.append(key, record, expected=expected)
        except BackendUnavailableError:
            # The commit may have happened with its reply lost: make the next read
            # come from MySQL rather than from a Redis copy that lacks the event.
            self.cache.discard(key)
            try:
                await self._distrust(key, floor=expected.version + 1, acknowledging=False)
            except BackendUnavailableError:
                pass  # logged; the append's own error is the one to report
            raise
        if result.outcome is AppendOutcome.DUPLICATE:
            # A retry of an event whose first attempt may never have been mirrored.
            self.cache.discard(key)
            await self._distrust(key, floor=result.revision.version)
            return result
        if await self._mirror(key, record, result):
            if self.trust.in_outage:
                await self.trust.end_outage()
        else:
            await self._distrust(
                key,
                floor=result.revision.version,
                app_floor=result.app_state_version if record.app_delta else None,
                user_floor=result.user_state_version if record.user_delta else None,
            )
        cached = self.cache.get(key)
        if cached is not None and cached.revision == expected:
            state = (
                {**cached.state, **copy.deepcopy(record.session_delta)}
                if record.session_delta
                else cached.state
            )
            self.cache.offer(
                key,
                cached.advanced(
                    result.revision, result.last_update_time, state, [record.event], len(record.payload)
                ),
            )
        else:
            self.cache.discard(key)
        return result

    async def _mirror(self, key: SessionKey, record: EventRecord, result: AppendResult) -> bool:
        """Copy a committed append into Redis; False if Redis could not be told."""
        if not self._redis_usable():
            _fallback("append")
            return False
        try:
            await self.redis.mirror_append(key, record, result.revision)
            if record.app_delta and result.app_state_version is not None:
                await self.redis.mirror_scope_state(
                    key.app_name, None, record.app_delta, result.app_state_version
                )
            if record.user_delta and result.user_state_version is not None:
                await self.redis.mirror_scope_state(
                    key.app_name, key.user_id, record.user_delta, result.user_state_version
                )
        except BackendUnavailableError as exc:
            self._redis_failed(exc)
            _fallback("append")
            return False
        return True

    async def delete(self, key: SessionKey) -> None:
        _note(**{"ifriend.tier": "mysql"})
        await self.mysql.delete(key)
        self.cache.discard(key)
        # The tombstone refuses a reader that loaded the session just before the
        # delete and would hydrate it back into Redis.
        await self._distrust(key, floor=DELETED)
