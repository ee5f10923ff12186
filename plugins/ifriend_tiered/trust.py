"""When replicas may believe Redis: the lease, repairs and outages, agreed through MySQL.

Redis can lack an acknowledged event in two ways. (a) A mirror write failed, or its
outcome is unknown (a reset, a timeout, too few replica acks): the writer knows.
(b) A master acknowledged a mirror and died before replicating it: the tiered store
prevents that by counting a mirror as written only once replicas have it (`WAIT`).

For (a), before acknowledging, the writer records a *repair* of the session in MySQL
and invalidates the session in Redis (a tombstone). When it cannot invalidate, it
starts an *outage*: a row in MySQL that it keeps alive. Replicas believe Redis only
while the *lease* key lives, and every renewal of the lease first checks MySQL: with
an outage alive it does not renew; otherwise it invalidates every recorded repair,
then renews, with a deadline counted from before that check. So one lease period
after an outage row is committed, no lease granted before it is left and none is
renewed while it lives: the writer acknowledges then, and at once while its row lives.
When the writer's mirrors succeed again it ends its outage; the next renewal repairs
what it recorded meanwhile. The lease's deadline is absolute (`PXAT`): replicas'
clocks may differ from Redis's by at most `clock_skew_ms`, which every wait adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from ifriend.plugin_api import BackendUnavailableError, SessionKey, telemetry

from .metrics import REDIS_OUTAGES

logger = logging.getLogger("ifriend.tiered")

REPAIR_BATCH = 500
REFUSE_ALL = 2**62  # the floor of a deleted session: no copy of it is hydrated again
IDLE_SECONDS = 30.0  # the maintenance task stops after this long without Redis traffic


class RedisTrust:
    """This replica's part in the protocol above: renewals, repairs, its own outage."""

    def __init__(
        self, redis: Any, mysql: Any, *, lease_ms: int, clock_skew_ms: int = 100
    ) -> None:
        self.redis = redis
        self.mysql = mysql
        self.lease_ms = lease_ms
        self.clock_skew_ms = clock_skew_ms
        self.replica = uuid.uuid4().hex
        self.outage_seconds = max(5.0, 4 * lease_ms / 1000)
        self._renewal = asyncio.Lock()
        self._outage = asyncio.Lock()
        self._safe_at: float | None = None  # monotonic; set while this replica is in an outage
        self._untrusted_until = 0.0  # monotonic: another replica's outage was seen
        self._retry_renewal_at = 0.0  # monotonic: a renewal failed; callers wait till then
        self._renewed_at = float("-inf")
        self._used_at = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- what readers and writers ask -------------------------------------------------------

    @property
    def in_outage(self) -> bool:
        """Whether this replica has acknowledged writes Redis may lack (its outage row lives)."""
        return self._safe_at is not None

    def believed(self) -> bool:
        """Whether reads may go to Redis at all (the lease decides each read after this)."""
        return self._safe_at is None and time.monotonic() >= self._untrusted_until

    def touch(self) -> None:
        """Redis answered: keep the lease renewed in the background while traffic lasts."""
        self._used_at = time.monotonic()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._maintain())

    async def renew(self) -> bool:
        """Check MySQL, invalidate every recorded repair, then (re)grant the lease.

        False, without renewing, while any replica's outage lives.
        """
        asked = time.monotonic()
        async with self._renewal:
            if self._renewed_at > asked:  # renewed while this caller waited
                return True
            if asked < max(self._untrusted_until, self._retry_renewal_at):  # tried moments ago
                return False
            try:
                return await self._renew()
            except BaseException:
                # A lease that still lives stays believed (MySQL may be the one down).
                self._retry_renewal_at = time.monotonic() + self.lease_ms / 3000
                raise

    async def _renew(self) -> bool:
        started = time.time()  # the lease counts from before the check
        outages, repairs = await self.mysql.redis_trust(REPAIR_BATCH)
        if outages:
            self._untrusted_until = time.monotonic() + self.lease_ms / 3000
            telemetry.note({"ifriend.redis.outages": outages})
            return False
        while repairs:
            for _, key in repairs:
                await self._repair(key)
            await self.mysql.clear_repairs([repair_id for repair_id, _ in repairs])
            telemetry.note({"ifriend.redis.repaired": len(repairs)})
            outages, repairs = await self.mysql.redis_trust(REPAIR_BATCH)
            if outages:
                self._untrusted_until = time.monotonic() + self.lease_ms / 3000
                return False
        held = await self.redis.grant_lease(int(started * 1000) + self.lease_ms)
        if held:
            self._renewed_at = time.monotonic()
            self._untrusted_until = 0.0
        return held

    async def _repair(self, key: SessionKey) -> None:
        """Tombstone `key` in Redis with floors at MySQL's current versions, so no copy
        older than those (from a read that began before the repair) is hydrated later."""
        current = await self.mysql.load(key, num_recent_events=0)
        if current is None:  # deleted meanwhile
            await self.redis.invalidate(key, floor=REFUSE_ALL)
            return
        await self.redis.invalidate(
            key,
            floor=current.revision.version,
            app_floor=current.app_state_version,
            user_floor=current.user_state_version,
        )

    # -- a write Redis may lack --------------------------------------------------------------

    async def record_repair(self, key: SessionKey) -> bool:
        """Record `key` for repair; in an outage, also keep the outage row alive.

        Returns True when this replica is in an outage whose row stayed alive (the write
        may then be acknowledged once `wait_until_safe` returns).
        """
        if self._safe_at is None:
            await self.mysql.mark_for_repair(key)
            return False
        alive = await self.mysql.mark_for_repair(
            key, outage=self.replica, outage_seconds=self.outage_seconds
        )
        if not alive:
            await self._restart_outage()
        return True

    async def begin_outage(self) -> None:
        """Stop every replica from believing Redis (this one's writes may be missing there)."""
        async with self._outage:
            if self._safe_at is not None:
                return
            await self.mysql.begin_outage(self.replica, self.outage_seconds)
            self._safe_at = time.monotonic() + (self.lease_ms + self.clock_skew_ms) / 1000
        telemetry.count(REDIS_OUTAGES)
        logger.warning(
            "Redis may lack writes this replica acknowledged; no replica trusts Redis "
            "until it has them again (sessions are served from MySQL meanwhile)"
        )
        self.touch()

    async def wait_until_safe(self) -> None:
        """Return once no replica can still believe a Redis copy older than our writes."""
        safe_at = self._safe_at
        if safe_at is not None:
            delay = safe_at - time.monotonic()
            if delay > 0:
                telemetry.note({"ifriend.redis.outage_wait_ms": round(delay * 1000, 1)})
                await asyncio.sleep(delay)

    async def end_outage(self) -> None:
        """Redis takes this replica's writes again: let the next renewal repair and re-grant."""
        async with self._outage:
            if self._safe_at is None:
                return
            await self.mysql.end_outage(self.replica)
            self._safe_at = None
        logger.warning("Redis takes this replica's writes again; sessions repaired before reuse")

    async def _restart_outage(self) -> None:
        async with self._outage:
            await self.mysql.begin_outage(self.replica, self.outage_seconds)
            self._safe_at = time.monotonic() + (self.lease_ms + self.clock_skew_ms) / 1000

    # -- background ---------------------------------------------------------------------------

    async def _maintain(self) -> None:
        """Renew the lease every third of it (or keep our outage row alive) while in use."""
        period = self.lease_ms / 3000
        while time.monotonic() - self._used_at < IDLE_SECONDS or self._safe_at is not None:
            await asyncio.sleep(period)
            try:
                if self._safe_at is not None:
                    if not await self.mysql.extend_outage(self.replica, self.outage_seconds):
                        await self._restart_outage()
                    if await self.redis.healthy():
                        await self.end_outage()
                elif time.monotonic() - self._renewed_at >= period:
                    await self.renew()
            except BackendUnavailableError:
                pass  # the next round tries again; requests report the outage themselves
            except Exception:  # never let the task die silently
                logger.exception("the Redis lease task failed; it restarts with the next request")
                return

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._safe_at is not None:
            with contextlib.suppress(BackendUnavailableError):
                await self.end_outage()
