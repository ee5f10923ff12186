"""`RedisStore`: sessions as Redis lists, one script per append.

Layout and guarantees are in docs/storage.md ("Redis key layout"). Round trips:
create 1 (2 with app/user state), load 1, append 1 (2 with app/user state),
delete 1, probe 1, hydrate 1, mirror_append 1, list 2-4; none grows with the
length of a session.
"""

from __future__ import annotations

import time
from typing import Any

from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError

from ifriend.plugin_api import (
    AppendOutcome,
    AppendResult,
    EventRecord,
    Revision,
    SessionHeader,
    SessionKey,
    StoredSession,
    decode_events,
    filter_events,
)

from .client import Op, RedisClient
from .fields import (
    as_hash,
    delete,
    hgetall,
    hlen,
    llen,
    meta_from_flat,
    meta_from_hash,
    scope_state,
    state_pairs,
    zpairs,
    zrange,
    zrem,
)
from .keys import Keys, SessionKeys, op_id_for_create, op_id_for_event
from .settings import RedisSettings
from .tier import Probe, TierOps

__all__ = ["Probe", "RedisStore"]

_STALE = (
    "The session was modified in storage since it was loaded (another writer "
    "appended first). Reload the session and retry."
)


class RedisStore(TierOps):
    """A `SessionStore` on one Redis server, or on a Redis Cluster (`cluster = true`).

    Every script touches the keys of one hash tag (one cluster slot); a pipeline
    that mixes slots is sent to each master in parallel by the client.
    """

    name = "redis"
    # An index entry whose session is gone is removed by `list` only once its
    # score is this old, so a create racing with a list cannot lose its entry.
    index_grace_seconds: float = 60.0

    def __init__(self, settings: RedisSettings | None = None) -> None:
        self.settings = settings or RedisSettings()
        self.keys = Keys(self.settings.key_prefix)
        self.client = RedisClient(self.settings)
        self._ttl = self.settings.session_ttl_seconds
        self._state_ttl = self.settings.state_ttl or 0

    # -- lifecycle -------------------------------------------------------------------

    async def connect(self) -> None:
        """Check the server's topology and load the scripts (one round trip).

        Raises `BackendUnavailableError` if the server cannot be reached (the store
        stays usable and recovers once the server answers), `TopologyError` if it is
        a cluster node and `cluster` is false, or the reverse.
        """
        async with self.client.bounded("connect"):
            await self.client.connect()

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        async with self.client.bounded("ping"):
            await self.client.execute([("PING",)])

    # -- the SessionStore contract --------------------------------------------------

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
        sk = self.keys.session(key)
        app_key = self.keys.app_state(key.app_name)
        user_key = self.keys.user_state(key.app_name, key.user_id)
        deltas = bool(app_delta or user_delta)
        # The index entries go first: a crash after them leaves an entry that
        # `list` skips, never a session that is not listed.
        index_ops = self._index_ops(key, created_at)
        ops = [
            *index_ops,
            self.client.evalsha(
                "create", sk.all(), [incarnation, repr(created_at), self._ttl, *state_pairs(state)]
            ),
        ]
        if not deltas:
            ops += [hgetall(app_key), hgetall(user_key)]
        async with self.client.bounded("create"):
            results = await self.client.execute(ops)
            if results[len(index_ops)] != b"created":
                raise AlreadyExistsError(f"Session with id {key.session_id} already exists.")
            if deltas:
                op_id = op_id_for_create(incarnation)
                results = await self.client.execute(
                    [
                        *self._scope_ops(key, op_id, app_delta, user_delta),
                        hgetall(app_key),
                        hgetall(user_key),
                    ]
                )
            app_hash, user_hash = results[-2], results[-1]
        app_state, app_version = scope_state(app_hash)
        user_state, user_version = scope_state(user_hash)
        return StoredSession(
            key=key,
            revision=Revision(incarnation, 0),
            last_update_time=created_at,
            state=dict(state),
            app_state=app_state,
            user_state=user_state,
            events=[],
            payloads=[],
            app_state_version=app_version or 0,
            user_state_version=user_version or 0,
        )

    async def load(
        self,
        key: SessionKey,
        *,
        num_recent_events: int | None = None,
        after_timestamp: float | None = None,
    ) -> StoredSession | None:
        sk = self.keys.session(key)
        if num_recent_events is None:
            start, with_events = 0, True
        else:
            start, with_events = -num_recent_events, num_recent_events != 0
        ops = [
            self.client.evalsha("load", sk.all(), [self._ttl, start, -1, int(with_events)]),
            hgetall(self.keys.app_state(key.app_name)),
            hgetall(self.keys.user_state(key.app_name, key.user_id)),
            *self._index_ttl_ops(key),
        ]
        async with self.client.bounded("load") as span:
            session, app_hash, user_hash = (await self.client.execute(ops))[:3]
            if session is None:
                span.set_attribute("ifriend.found", False)
                return None
            meta_flat, payloads = session
            span.set_attribute("ifriend.events", len(payloads))
        meta = meta_from_flat(meta_flat)
        events = decode_events(payloads)
        events = filter_events(events, num_recent_events, after_timestamp)
        payloads = payloads[len(payloads) - len(events) :]
        app_state, app_version = scope_state(app_hash)
        user_state, user_version = scope_state(user_hash)
        return StoredSession(
            key=key,
            revision=meta.revision,
            last_update_time=meta.ts,
            state=meta.state,
            app_state=app_state,
            user_state=user_state,
            events=events,
            payloads=list(payloads),
            app_state_version=app_version or 0,
            user_state_version=user_version or 0,
        )

    async def append(
        self, key: SessionKey, record: EventRecord, *, expected: Revision
    ) -> AppendResult:
        """One script on the session's keys; app/user deltas follow, not atomically.

        A crash between the two round trips keeps the event without its app/user
        delta (the session's own state is always in step with its log).
        """
        ts = record.timestamp
        async with self.client.bounded("append") as span:
            results = await self.client.execute(
                [*self._index_ops(key, ts), self._append_op(key, record, expected, mirror=False)]
            )
            status, inc, ver, stored_ts = results[-1]
            span.set_attribute("ifriend.outcome", status.decode())
            if status == b"missing":
                raise SessionNotFoundError(f"Session {key.session_id} not found.")
            if status == b"stale":
                raise StaleSessionError(_STALE)
            revision = Revision(inc.decode(), int(ver))
            if status == b"duplicate":
                return AppendResult(AppendOutcome.DUPLICATE, revision, float(stored_ts))
            app_version = user_version = None
            if record.app_delta or record.user_delta:
                op_id = op_id_for_event(key, record.event_id)
                ops = self._scope_ops(key, op_id, record.app_delta, record.user_delta)
                versions = iter(await self.client.execute(ops))
                app_version = next(versions) if record.app_delta else None
                user_version = next(versions) if record.user_delta else None
        return AppendResult(
            AppendOutcome.APPLIED,
            revision,
            float(stored_ts),
            app_state_version=app_version,
            user_state_version=user_version,
        )

    async def delete(self, key: SessionKey) -> None:
        sk = self.keys.session(key)
        index = self.keys.sessions(key.app_name, key.user_id)
        async with self.client.bounded("delete"):
            await self.client.execute([delete(*sk.all()), zrem(index, key.session_id)])

    async def list(self, app_name: str, user_id: str | None) -> list[SessionHeader]:
        """Sessions found through the index ZSETs, O(sessions listed), no SCAN.

        Round trips: the app's users (only when `user_id` is None), then every
        user's index and state, then every listed session's meta and lengths.
        """
        async with self.client.bounded("list"):
            if user_id is None:
                users_flat, app_hash = await self.client.execute(
                    [zrange(self.keys.users(app_name)), hgetall(self.keys.app_state(app_name))]
                )
                users = zpairs(users_flat)
            else:
                users, app_hash = [(user_id, float("inf"))], None
            ops: list[Op] = []
            for uid, _ in users:
                ops += [
                    zrange(self.keys.sessions(app_name, uid)),
                    hgetall(self.keys.user_state(app_name, uid)),
                ]
            if app_hash is None:
                ops.append(hgetall(self.keys.app_state(app_name)))
            results = await self.client.execute(ops)
            if app_hash is None:
                app_hash = results.pop()
            candidates: list[tuple[SessionKey, float]] = []
            user_states: dict[str, dict[str, Any]] = {}
            cleanup: list[Op] = []
            for (uid, user_score), sessions, user_hash in zip(
                users, results[::2], results[1::2], strict=True
            ):
                user_states[uid] = scope_state(user_hash)[0]
                pairs = zpairs(sessions)
                candidates += [(SessionKey(app_name, uid, sid), score) for sid, score in pairs]
                if not pairs and self._expired(user_score):
                    cleanup.append(zrem(self.keys.users(app_name), uid))
            headers = await self._headers(candidates, scope_state(app_hash)[0], user_states, cleanup)
            if cleanup:
                await self.client.execute(cleanup)
        return headers

    async def _headers(
        self,
        candidates: list[tuple[SessionKey, float]],
        app_state: dict[str, Any],
        user_states: dict[str, dict[str, Any]],
        cleanup: list[Op],
    ) -> list[SessionHeader]:
        """Headers of the present candidates; index entries of long-gone ones go to `cleanup`."""
        ops: list[Op] = []
        for skey, _ in candidates:
            sk = self.keys.session(skey)
            ops += [hgetall(sk.meta), llen(sk.log), hlen(sk.ids)]
        results = await self.client.execute(ops) if ops else []
        headers: list[SessionHeader] = []
        for i, (skey, score) in enumerate(candidates):
            meta_hash, log_len, ids_len = results[3 * i : 3 * i + 3]
            meta = meta_from_hash(as_hash(meta_hash))
            if meta is None or not meta.revision.version == log_len == ids_len:
                if self._expired(score):
                    cleanup.append(
                        zrem(self.keys.sessions(skey.app_name, skey.user_id), skey.session_id)
                    )
                continue
            headers.append(
                SessionHeader(
                    key=skey,
                    last_update_time=meta.ts,
                    state=meta.state,
                    app_state=app_state,
                    user_state=user_states[skey.user_id],
                )
            )
        return headers

    async def get_user_state(self, app_name: str, user_id: str) -> dict[str, Any]:
        async with self.client.bounded("get_user_state"):
            (raw,) = await self.client.execute([hgetall(self.keys.user_state(app_name, user_id))])
        return scope_state(raw)[0]

    # -- helpers ---------------------------------------------------------------------

    def _append_op(
        self, key: SessionKey, record: EventRecord, expected: Revision, *, mirror: bool
    ) -> Op:
        sk: SessionKeys = self.keys.session(key)
        args = [
            record.event_id,
            expected.incarnation,
            expected.version,
            record.payload,
            repr(record.timestamp),
            self._ttl,
            int(mirror),
            *state_pairs(record.session_delta),
        ]
        return self.client.evalsha("append", sk.all(), args)

    def _index_ops(self, key: SessionKey, score: float) -> list[Op]:
        """ZADD GT into the user's and the app's index, TTLs refreshed."""
        sessions = self.keys.sessions(key.app_name, key.user_id)
        users = self.keys.users(key.app_name)
        return [
            ("ZADD", users, "GT", score, key.user_id),
            ("ZADD", sessions, "GT", score, key.session_id),
            *self._index_ttl_ops(key),
        ]

    def _index_ttl_ops(self, key: SessionKey) -> list[Op]:
        """The index lives as long as the last session written or read through it."""
        sessions = self.keys.sessions(key.app_name, key.user_id)
        users = self.keys.users(key.app_name)
        return [("EXPIRE", users, self._ttl), ("EXPIRE", sessions, self._ttl)]

    def _scope_ops(
        self, key: SessionKey, op_id: str, app_delta: dict[str, Any], user_delta: dict[str, Any]
    ) -> list[Op]:
        ops = []
        for hash_key, delta in (
            (self.keys.app_state(key.app_name), app_delta),
            (self.keys.user_state(key.app_name, key.user_id), user_delta),
        ):
            if delta:
                args = [op_id, self._state_ttl, *state_pairs(delta)]
                ops.append(self.client.evalsha("scope_write", [hash_key], args))
        return ops

    def _expired(self, score: float) -> bool:
        return score < time.time() - self.index_grace_seconds
