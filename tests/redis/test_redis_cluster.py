"""The slot-aware exchange on a Redis Cluster: routing, redirects, failover, bounded pools.

Tests that only read and write use the shared test cluster (IFRIEND_TEST_REDIS_CLUSTER_URL,
keys under a prefix of their own, deleted afterwards); tests that move slots or kill nodes
use a `private_cluster`.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.crc import key_slot as redis_py_key_slot

from ifriend_bench.cleanup import delete_redis_keys
from ifriend.errors import BackendTimeoutError, BackendUnavailableError
from ifriend.sessions import Revision, SessionKey
from ifriend_redis import RedisClient, RedisSettings, RedisStore
from ifriend_redis.cluster import Cluster, key_of, key_slot
from tests.servers import PrivateCluster


def test_the_key_of_an_op_is_its_first_key():
    assert key_of(("EVALSHA", "f" * 40, 3, "p:{s|a}:meta", "p:{s|a}:log", "p:{s|a}:ids", 1)) == "p:{s|a}:meta"
    assert key_of(("EVALSHA", "f" * 40, 0, "not-a-key")) is None
    assert key_of(("eval", "return 1", "1", "k")) == "k"
    assert key_of(("HGETALL", "p:{u|a|b}:state")) == "p:{u|a|b}:state"
    assert key_of(("ZADD", "z", "GT", 1.5, "m")) == "z"
    for keyless in [("WAIT", 1, 50), ("PING",), ("SCRIPT", "LOAD", "return 1"), ("CLIENT", "ID"),
                    ("INFO", "cluster"), ("CLUSTER", "SLOTS"), (b"ping",)]:
        assert key_of(keyless) is None, keyless


def test_slots_are_redis_slots():
    for key in ["", "a", "user:1000", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap",
                "foo{bar}{zap}", "p:{s|app|u%7B|s}:meta", "é{ü}", "{}", "}{"]:
        assert key_slot(key) == redis_py_key_slot(key.encode()), key
        assert key_slot(key.encode()) == key_slot(key)


# -- the shared test cluster ---------------------------------------------------------------


@pytest.fixture
async def cluster_client(redis_cluster_url: str) -> AsyncIterator[RedisClient]:
    """A client of the shared cluster; its keys (under `client.prefix`) are deleted afterwards."""
    url = redis_cluster_url
    prefix = f"ifriend-test-{uuid.uuid4().hex}"
    client = RedisClient(RedisSettings(url=url, cluster=True, key_prefix=prefix))
    client.prefix = prefix  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        await client.close()
        await delete_redis_keys(url, prefix, cluster=True)


async def keys_on_every_master(client: RedisClient, count: int = 1) -> dict[Any, list[str]]:
    """`count` keys (under the client's prefix) served by each master."""
    cluster = client.transport
    assert isinstance(cluster, Cluster)
    async with client.bounded("ping"):
        await client.execute([("PING",)])  # reads the slot map
    found: dict[Any, list[str]] = {node: [] for node in cluster.masters}
    i = 0
    while any(len(keys) < count for keys in found.values()):
        key = f"{client.prefix}:{{k{i}}}"  # type: ignore[attr-defined]
        node = cluster.node_for(key)
        if len(found[node]) < count:
            found[node].append(key)
        i += 1
    return found


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[int]]:
    """Sends per server port (one per pipelined exchange with that server)."""
    from redis.asyncio.connection import AbstractConnection

    counted: Counter[int] = Counter()
    original = AbstractConnection.send_packed_command

    async def counting(self: Any, command: Any, check_health: bool = True) -> None:
        counted[self.port] += 1
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    yield counted


async def test_ops_for_every_master_go_in_one_send_each_and_reply_in_order(cluster_client, sends):
    by_node = await keys_on_every_master(cluster_client, count=2)
    keys = [key for pair in zip(*by_node.values(), strict=True) for key in pair]  # interleaved
    ops = [("SET", key, f"v{i}") for i, key in enumerate(keys)]
    ops += [("GET", key) for key in reversed(keys)]
    async with cluster_client.bounded("test"):
        await cluster_client.execute(ops)  # connects (the handshake has sends of its own)
        sends.clear()
        replies = await cluster_client.execute(ops)
    assert replies[: len(keys)] == [b"OK"] * len(keys)
    assert replies[len(keys) :] == [f"v{i}".encode() for i in reversed(range(len(keys)))]
    ports = {int(node.address.rsplit(":", 1)[1]) for node in by_node}
    assert dict(sends) == {port: 1 for port in ports}


async def test_an_op_without_a_key_goes_with_the_op_before_it(cluster_client):
    by_node = await keys_on_every_master(cluster_client)
    ops: list[tuple[Any, ...]] = [("PING",)]  # first and keyless: any master
    for node, (key,) in by_node.items():
        ops += [("SET", key, 1), ("CLIENT", "INFO"), ("WAIT", 0, 0)]
    async with cluster_client.bounded("test"):
        replies = await cluster_client.execute(ops)
    assert replies[0] in (b"PONG", "PONG")
    for i, node in enumerate(by_node):
        info = replies[2 + 3 * i]
        info = info.decode() if isinstance(info, bytes) else info
        assert f"laddr={node.address}" in info  # the server end of the connection


async def test_a_store_pipeline_across_slots_works_from_any_seed_node(cluster_client):
    # the seed is only where the slot map is read: any node, replicas included
    cluster = cluster_client.transport
    await keys_on_every_master(cluster_client)
    replica = cluster._replicas[0]
    settings = RedisSettings(url=replica.url, cluster=True, key_prefix=cluster_client.prefix)
    store = RedisStore(settings)
    try:
        await store.connect()
        keys = [SessionKey("app", f"user-{i}", f"s{i}") for i in range(6)]
        for key in keys:
            await store.create(key, incarnation="i", state={}, app_delta={"n": 1}, user_delta={}, created_at=1.0)
        listed = await store.list("app", None)
        assert {h.key for h in listed} == set(keys)
    finally:
        await store.close()


async def test_callers_beyond_max_connections_wait_on_each_node(cluster_client):
    prefix = cluster_client.prefix
    store = RedisStore(RedisSettings(url=cluster_client.settings.url, cluster=True, key_prefix=prefix,
                                     max_connections=1))
    try:
        keys = [SessionKey("app", f"u{i}", "s") for i in range(12)]
        for key in keys:
            await store.create(key, incarnation="i", state={}, app_delta={}, user_delta={}, created_at=1.0)
        loads = await asyncio.gather(*(store.load(key) for key in keys * 4))
        assert all(s is not None and s.revision == Revision("i", 0) for s in loads)
        cluster = store.client.transport
        assert [n.connections.size for n in cluster.masters] == [1, 1, 1]
    finally:
        await store.close()


# -- a cluster of the test's own -------------------------------------------------------------


async def store_on(cluster: PrivateCluster, **overrides: Any) -> RedisStore:
    settings = RedisSettings(url=cluster.url, cluster=True, key_prefix="t", **overrides)
    store = RedisStore(settings)
    await store.connect()
    return store


async def created(store: RedisStore, session_id: str, **state: Any) -> tuple[SessionKey, Revision, str]:
    """A new session: its key, revision, and the name of its meta key."""
    key = SessionKey("app", "user", session_id)
    stored = await store.create(key, incarnation="i", state=state, app_delta={}, user_delta={}, created_at=1.0)
    return key, stored.revision, store.keys.session(key).meta


async def test_a_moved_slot_is_found_again_and_the_ops_resent(private_cluster: PrivateCluster):
    store = await store_on(private_cluster)
    try:
        key, revision, meta = await created(store, "moving", k=1)
        source = private_cluster.node_for_key(meta)
        target = next(m for m in private_cluster.masters() if m is not source)
        private_cluster.move_slot(private_cluster.slot_of(meta), target)
        # the client's map still names the source, which answers MOVED
        assert store.client.transport.node_for(meta).address == source.address
        probe = await store.probe(key, revision)
        assert (probe.status, probe.state) == ("current", {"k": 1})
        assert store.client.transport.node_for(meta).address == target.address
    finally:
        await store.close()


async def test_ask_during_a_migration_is_followed(private_cluster: PrivateCluster):
    client = RedisClient(RedisSettings(url=private_cluster.url, cluster=True))
    try:
        async with client.bounded("set"):
            await client.execute([("SET", "{tag}moved", "m"), ("SET", "{tag}stays", "s")])
        slot = private_cluster.slot_of("{tag}")
        target = next(m for m in private_cluster.masters() if m is not private_cluster.slot_owner(slot))
        source = private_cluster.start_migration(slot, target)
        private_cluster.migrate_keys(source, target, ["{tag}moved"])
        async with client.bounded("get"):
            # the source has one key (served there) and not the other (ASK: the target has it)
            assert await client.execute([("GET", "{tag}stays"), ("GET", "{tag}moved")]) == [b"s", b"m"]
    finally:
        await client.close()


async def test_tryagain_is_retried_until_the_migration_ends_or_half_the_deadline(
    private_cluster: PrivateCluster,
):
    client = RedisClient(RedisSettings(url=private_cluster.url, cluster=True, timeout_seconds=0.6))
    try:
        async with client.bounded("set"):
            await client.execute([("SET", "{t}a", "1"), ("SET", "{t}b", "2")])
        slot = private_cluster.slot_of("{t}")
        target = next(m for m in private_cluster.masters() if m is not private_cluster.slot_owner(slot))
        source = private_cluster.start_migration(slot, target)
        private_cluster.migrate_keys(source, target, ["{t}a"])  # the keys are split: TRYAGAIN
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="TryAgainError"):
            async with client.bounded("mget"):
                await client.execute([("MGET", "{t}a", "{t}b")])
        assert 0.25 <= time.monotonic() - started < 0.6
        finisher = threading.Timer(0.1, private_cluster.finish_migration, (slot, target))
        finisher.start()
        try:
            async with client.bounded("mget"):
                assert await client.execute([("MGET", "{t}a", "{t}b")]) == [[b"1", b"2"]]
        finally:
            finisher.join()
    finally:
        await client.close()


async def test_a_keyless_wait_counts_the_write_sent_just_before_it(private_cluster: PrivateCluster):
    client = RedisClient(RedisSettings(url=private_cluster.url, cluster=True))
    try:
        paused_master = private_cluster.node_for_key("{a}")
        other = next(m for m in private_cluster.masters() if m is not paused_master)
        b = next(f"{{b{i}}}" for i in range(1000) if private_cluster.node_for_key(f"{{b{i}}}") is other)
        private_cluster.pause(private_cluster.replica_of(paused_master))
        async with client.bounded("wait"):
            replies = await client.execute(
                [("SET", "{a}", 1), ("WAIT", 1, 200), ("SET", b, 1), ("WAIT", 1, 200)]
            )
        assert replies == [b"OK", 0, b"OK", 1]  # the paused replica acknowledged nothing
    finally:
        await client.close()


async def test_after_a_failover_the_promoted_replica_serves_the_session(private_cluster: PrivateCluster):
    store = await store_on(private_cluster, timeout_seconds=1.0)
    try:
        key, revision, meta = await created(store, "failover", k=1)
        master = private_cluster.node_for_key(meta)
        replica = private_cluster.replica_of(master)
        private_cluster.wait_in_sync(master)  # the replica has the session
        private_cluster.kill(master)
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):  # refused, the map still names it
            await store.probe(key, revision)
        assert time.monotonic() - started < 1.0
        assert private_cluster.wait_failover(master) is replica
        probe = await store.probe(key, revision)
        assert (probe.status, probe.state) == ("current", {"k": 1})
        assert store.client.transport.node_for(meta).address == replica.address
        loaded = await store.load(key)
        assert loaded is not None and loaded.state == {"k": 1}
    finally:
        await store.close()


async def test_a_paused_master_costs_the_deadline_not_more(private_cluster: PrivateCluster):
    store = await store_on(private_cluster, timeout_seconds=0.5)
    try:
        key, revision, meta = await created(store, "paused")
        master = private_cluster.node_for_key(meta)
        private_cluster.pause(master)
        started = time.monotonic()
        try:
            with pytest.raises(BackendTimeoutError):
                await store.probe(key, revision)
        finally:
            private_cluster.resume(master)
        assert time.monotonic() - started < 0.9
        assert (await store.probe(key, revision)).status == "current"
    finally:
        await store.close()
