"""What the tiered composition calls on its Redis tier: probe, hydrate, mirror, lease.

Floors make the classic cache race safe: a reader loads v5 from MySQL, a writer
commits v6 and finds Redis without the session, so it leaves `floor = 6`; the
reader's hydrate of v5 is then refused.

With `replica_acks` set (`require_replica_acks`), every write that must survive a
failover (mirrors, tombstones) is followed by `WAIT n timeout` on the same
connection, and counts as done only once `n` replicas acknowledged it: Redis
replication is asynchronous, and a promoted replica lacks what it never received.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ifriend.plugin_api import (
    BackendUnavailableError,
    EventRecord,
    Revision,
    SessionKey,
    StoredSession,
)

from .client import Op
from .fields import delete, exists, hgetall, meta_from_flat, scope_state, state_pairs

if TYPE_CHECKING:
    from .client import RedisClient
    from .keys import Keys


@dataclass(slots=True)
class Probe:
    """What one round trip learnt about a session a cache holds at `known`."""

    status: Literal["current", "behind", "miss"]
    revision: Revision | None
    last_update_time: float
    state: dict[str, Any] = field(default_factory=dict)
    app_state: dict[str, Any] = field(default_factory=dict)
    app_state_version: int | None = None  # None: the hash is missing
    user_state: dict[str, Any] = field(default_factory=dict)
    user_state_version: int | None = None
    tail: list[bytes] = field(default_factory=list)  # events after `known`, oldest first
    lease: bool = False


class UnreplicatedWriteError(BackendUnavailableError):
    """Redis applied a write that too few replicas acknowledged in time: a failover may lose it."""


class TierOps:
    """Methods of `RedisStore` beyond the `SessionStore` contract."""

    client: RedisClient
    keys: Keys
    _ttl: int
    _state_ttl: int
    replica_acks: int = 0
    replica_ack_timeout_ms: int = 200

    def require_replica_acks(self, replicas: int, timeout_ms: int) -> None:
        """Count a mirror or tombstone as written only once `replicas` replicas have it."""
        self.replica_acks = replicas
        self.replica_ack_timeout_ms = timeout_ms

    async def _write(self, operation: str, ops: list[Op]) -> list[Any]:
        """Send `ops` (writes) in one round trip, each followed by WAIT when replica acks
        are required; the writes' replies, or `UnreplicatedWriteError`."""
        acks = self.replica_acks
        if acks:
            wait = ("WAIT", acks, self.replica_ack_timeout_ms)
            ops = [part for op in ops for part in (op, wait)]
        async with self.client.bounded(operation) as span:
            replies = await self.client.execute(ops)
            if not acks:
                return replies
            confirmed = min(replies[1::2])
            span.set_attribute("ifriend.redis.replica_acks", confirmed)
        if confirmed < acks:
            raise UnreplicatedWriteError(
                f"redis {operation}: {confirmed} of {acks} replicas acknowledged "
                f"within {self.replica_ack_timeout_ms} ms"
            )
        return replies[::2]

    def _append_op(
        self, key: SessionKey, record: EventRecord, expected: Revision, *, mirror: bool
    ) -> Op:
        raise NotImplementedError

    async def probe(self, key: SessionKey, known: Revision | None) -> Probe:
        """Validate (or refresh) a cached copy at `known` in one round trip.

        "current": Redis is at `known`. "behind": `tail` holds the events after
        `known` (every event if `known` is None). "miss": absent, partly evicted,
        another incarnation, or older than `known`. Also returns the app and user
        state with their versions, and whether the outage lease is held.
        """
        sk = self.keys.session(key)
        args = [self._ttl, known.incarnation, known.version] if known else [self._ttl, "", -1]
        ops = [
            self.client.evalsha("probe", sk.all(), args),
            hgetall(self.keys.app_state(key.app_name)),
            hgetall(self.keys.user_state(key.app_name, key.user_id)),
            exists(self.keys.lease),
        ]
        async with self.client.bounded("probe") as span:
            session, app_hash, user_hash, lease = await self.client.execute(ops)
            status = session[0].decode()
            span.set_attribute("ifriend.outcome", status)
        app_state, app_version = scope_state(app_hash)
        user_state, user_version = scope_state(user_hash)
        if status == "miss":
            revision, last_update_time, state, tail = None, 0.0, {}, []
        else:
            meta = meta_from_flat(session[1])
            revision, last_update_time, state = meta.revision, meta.ts, meta.state
            tail = session[2]
        return Probe(
            status=status,  # type: ignore[arg-type]
            revision=revision,
            last_update_time=last_update_time,
            state=state,
            app_state=app_state,
            app_state_version=app_version,
            user_state=user_state,
            user_state_version=user_version,
            tail=tail,
            lease=bool(lease),
        )

    async def hydrate(self, stored: StoredSession) -> bool:
        """Copy a whole session read from the durable tier; False if refused.

        Refused when a mirror left a floor above `stored`'s version, or when Redis
        already holds this incarnation at the same or a later version.
        """
        payloads = stored.payloads
        if payloads is None or len(payloads) != stored.revision.version:
            raise ValueError("hydrate needs every event's payload (stored.payloads)")
        if len(stored.events) != len(payloads):
            raise ValueError("hydrate needs every event (stored.events) for the id index")
        sk = self.keys.session(stored.key)
        state = state_pairs(stored.state)
        args = [
            stored.revision.incarnation,
            stored.revision.version,
            repr(stored.last_update_time),
            self._ttl,
            len(state),
            *state,
            *(e.id for e in stored.events),
            *payloads,
        ]
        async with self.client.bounded("hydrate", **{"ifriend.events": len(payloads)}):
            (written,) = await self.client.execute([self.client.evalsha("hydrate", sk.all(), args)])
        return bool(written)

    async def hydrate_scope_state(
        self, app_name: str, user_id: str | None, state: dict[str, Any], version: int
    ) -> bool:
        """Copy the app (user_id None) or user state at `version`; False if refused."""
        hash_key = self.keys.scope_state(app_name, user_id)
        args = [version, self._state_ttl, *state_pairs(state)]
        async with self.client.bounded("hydrate_scope_state"):
            (written,) = await self.client.execute(
                [self.client.evalsha("hydrate_scope", [hash_key], args)]
            )
        return bool(written)

    async def mirror_append(
        self, key: SessionKey, record: EventRecord, revision_after: Revision
    ) -> bool:
        """Apply an event the durable tier committed at `revision_after`.

        True if Redis now holds it. Otherwise Redis did not hold the session just
        before it: the session's keys become a tombstone `{floor: version}` that
        refuses any hydrate of an older copy, and False is returned. Either way no
        copy lacking the event is left; `UnreplicatedWriteError` if that is unsure.
        """
        expected = Revision(revision_after.incarnation, revision_after.version - 1)
        (result,) = await self._write(
            "mirror_append", [self._append_op(key, record, expected, mirror=True)]
        )
        return result[0] in (b"applied", b"duplicate")

    async def mirror_scope_state(
        self, app_name: str, user_id: str | None, delta: dict[str, Any], version: int
    ) -> bool:
        """Apply an app/user delta committed at `version`; False if it left a floor instead."""
        hash_key = self.keys.scope_state(app_name, user_id)
        tombstone_ttl = self._state_ttl or self._ttl
        args = [version, self._state_ttl, tombstone_ttl, *state_pairs(delta)]
        (applied,) = await self._write(
            "mirror_scope_state", [self.client.evalsha("mirror_scope", [hash_key], args)]
        )
        return bool(applied)

    async def invalidate(
        self,
        key: SessionKey,
        *,
        floor: int | None = None,
        app_floor: int | None = None,
        user_floor: int | None = None,
        ttl: int | None = None,
    ) -> None:
        """Drop the session's keys; with `floor`, leave a tombstone refusing older hydrates.

        `app_floor` / `user_floor` do the same to the app and user state hashes; the
        tombstones live `ttl` seconds (default: the session TTL). One round trip,
        replicated before it returns when replica acks are required.
        """
        sk = self.keys.session(key)
        if floor is None:
            ops: list[Op] = [delete(*sk.all())]
        else:
            ops = [self.client.evalsha("tombstone", sk.all(), [floor, ttl or self._ttl])]
        tombstone_ttl = ttl or self._state_ttl or self._ttl
        for user_id, scope_floor in ((None, app_floor), (key.user_id, user_floor)):
            if scope_floor is not None:
                hash_key = self.keys.scope_state(key.app_name, user_id)
                ops.append(
                    self.client.evalsha("scope_tombstone", [hash_key], [scope_floor, tombstone_ttl])
                )
        await self._write("invalidate", ops)

    async def invalidate_scope_state(self, app_name: str, user_id: str | None) -> None:
        """Drop the app (user_id None) or user state hash."""
        await self._write("invalidate_scope_state", [delete(self.keys.scope_state(app_name, user_id))])

    async def grant_lease(self, until_ms: int) -> bool:
        """Make the lease live until `until_ms` (Unix time in ms, this client's clock).

        The deadline is absolute (PXAT): a grant held up while Redis was paused cannot
        outlive it. Returns whether the lease is held now.
        """
        async with self.client.bounded("grant_lease"):
            if until_ms <= time.time() * 1000:
                return False
            (reply,) = await self.client.execute([("SET", self.keys.lease, b"1", "PXAT", until_ms)])
            return reply is not None

    async def lease_present(self) -> bool:
        async with self.client.bounded("lease_present"):
            (found,) = await self.client.execute([exists(self.keys.lease)])
            return bool(found)

    async def healthy(self) -> bool:
        """Whether a write reaches Redis (and its replicas, when acks are required) now."""
        try:
            await self._write("health", [("SET", self.keys.health, b"1", "PX", 10_000)])
        except BackendUnavailableError:
            return False
        return True
