"""A Redis Cluster master fails over after acknowledging writes its replica never received.

The replica of the master holding the sessions is paused (SIGSTOP), events are appended
and acknowledged, the master is killed (SIGKILL), the replica resumes and takes over
without them: Redis rolled back. With mirrors counted only once a replica has them
(`WAIT`, the default on a cluster), the writer with its LRU and a replica with none both
return every acknowledged event, in order, once, and the conversation continues from
either. Real servers: a private 3 masters + 3 replicas cluster and the shared MariaDB.
"""

from __future__ import annotations

import asyncio
import time

from ifriend.sessions import SessionKey

from .workload import APP, USER, Reader, Result, said

REDIS = {"timeout_seconds": 0.5, "cluster": True}
TIERED = {"redis_retry_seconds": 0.2}


def fill_replication_link(master, key: str, megabytes: int = 48) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=master.port, socket_timeout=10)
    try:
        chunk = b"x" * (1 << 20)
        for i in range(megabytes):  # keys in the session's slot, so on this master
            client.set(f"{key}:filler:{i}", chunk, ex=60)
    finally:
        client.close()


async def test_failover_that_lost_acknowledged_mirrors(make_app, private_cluster):
    writer = await make_app(redis={**REDIS, "url": private_cluster.url}, tiered=TIERED)
    other = await make_app(redis={**REDIS, "url": private_cluster.url}, tiered=TIERED)
    # the cold replica reads first: a read through the writer's LRU would put the session
    # back into Redis (its copy is ahead of Redis's, so it reads MySQL and rehydrates)
    readers = [Reader("other-cold", other, cold=True), Reader("writer", writer)]
    result = Result("failover")
    acked: list[str] = []
    service = writer.session_service
    session = await service.create_session(app_name=APP, user_id=USER, session_id="failover")

    async def append(text: str) -> None:
        started = time.monotonic()
        await service.append_event(session, said(text))
        result.max_op_s = max(result.max_op_s, time.monotonic() - started)
        acked.append(text)
        result.acked += 1

    async def check_reads() -> None:
        for reader in readers:
            started = time.monotonic()
            got = await reader.read("failover")
            result.max_op_s = max(result.max_op_s, time.monotonic() - started)
            result.reads += 1
            result.dup += len(got) - len(set(got))
            result.stale_reads += got[: len(acked)] != acked

    for i in range(3):
        await append(f"replicated {i}")
    await check_reads()  # both replicas hold the session in Redis (and the writer in its LRU)
    meta = writer.session_service.store.redis.keys.session(SessionKey(APP, USER, "failover")).meta
    master = private_cluster.node_for_key(meta)
    replica = private_cluster.replica_of(master)
    private_cluster.wait_in_sync(master)
    private_cluster.pause(replica)
    try:
        # A paused replica's socket still takes what the master sends: fill it, so that
        # what follows stays in the master's output buffer and dies with the master.
        fill_replication_link(master, meta)
        for i in range(3):
            await append(f"acknowledged while the replica was paused {i}")
        private_cluster.kill(master)
    finally:
        private_cluster.resume(replica)
    assert private_cluster.wait_failover(master) is replica
    for _ in range(15):  # reads over a while after the takeover (Redis lacks the last three)
        await check_reads()
        await asyncio.sleep(0.1)
    private_cluster.restart(master)  # back, as the replica of the promoted node
    for app, text in ((other, "from the other replica"), (writer, "from the writer")):
        continued = await app.session_service.get_session(
            app_name=APP, user_id=USER, session_id="failover"
        )
        await app.session_service.append_event(continued, said(text))
        acked.append(text)
    for _ in range(5):
        await check_reads()
        await asyncio.sleep(0.1)
    for reader in readers:
        got = await reader.read("failover")
        result.lost_acked += len(set(acked) - set(got))
        assert got == acked
    result.check(max_op_s=5.0)
