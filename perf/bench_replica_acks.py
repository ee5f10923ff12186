"""What waiting for a Redis replica costs a mirror: `python perf/bench_replica_acks.py`.

Starts a private master and a replica (redis-server on free loopback ports), then times
the tiered store's `mirror_append` without and with `WAIT 1` (the default on a cluster,
so a failover cannot lose an acknowledged event), interleaved call by call so both see
the same host noise. Prints p50/p99 in microseconds and the ratio.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from google.adk.events.event import Event
from google.genai import types

from ifriend.sessions import EventRecord, Revision, SessionKey
from ifriend.sessions.codec import encode_event
from ifriend_redis import RedisSettings, RedisStore

SAMPLES = 3000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(folder), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start on {port}")


def record(i: int) -> EventRecord:
    event = Event(author="user", invocation_id=f"inv-{i}",
                  content=types.Content(role="user", parts=[types.Part(text="hello " * 40)]))
    return EventRecord(event, encode_event(event), {}, {}, {})


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="ifriend-acks-") as folder:
        master_port, replica_port = free_port(), free_port()
        master = start_redis(Path(folder), master_port)
        replica_dir = Path(folder) / "replica"
        replica_dir.mkdir()
        replica = start_redis(replica_dir, replica_port, "--replicaof", "127.0.0.1", str(master_port))
        try:
            settings = RedisSettings(url=f"redis://127.0.0.1:{master_port}/0")
            stores = {"no WAIT": RedisStore(settings), "WAIT 1": RedisStore(settings)}
            stores["WAIT 1"].require_replica_acks(1, 200)
            for store in stores.values():
                await store.connect()
            while (await stores["no WAIT"].client.redis.info("replication")).get(
                "slave0", {}
            ).get("state") != "online":
                await asyncio.sleep(0.05)
            records = [record(i) for i in range(SAMPLES + 200)]
            sessions = {}
            for name, store in stores.items():
                key = SessionKey("bench", "u", f"{name}-{uuid.uuid4().hex[:6]}")
                created = await store.create(key, incarnation="inc", state={}, app_delta={},
                                             user_delta={}, created_at=time.time())
                sessions[name] = (key, created.revision.version)
            times: dict[str, list[float]] = {name: [] for name in stores}
            gc.disable()
            try:
                for i, r in enumerate(records):
                    for name, store in (stores.items() if i % 2 else reversed(stores.items())):
                        key, version = sessions[name]
                        started = time.perf_counter()
                        await store.mirror_append(key, r, Revision("inc", version + 1))
                        if i >= 200:
                            times[name].append(time.perf_counter() - started)
                        sessions[name] = (key, version + 1)
            finally:
                gc.enable()
            p = {n: (statistics.median(t) * 1e6, sorted(t)[int(len(t) * 0.99)] * 1e6) for n, t in times.items()}
            print(f"mirror_append, {SAMPLES} calls each, interleaved (us):")
            for name, (p50, p99) in p.items():
                print(f"  {name:8} p50 {p50:8.1f}  p99 {p99:8.1f}")
            print(f"  WAIT 1 / no WAIT: p50 x{p['WAIT 1'][0] / p['no WAIT'][0]:.2f}, "
                  f"p99 x{p['WAIT 1'][1] / p['no WAIT'][1]:.2f}")
            for store in stores.values():
                await store.close()
        finally:
            for process in (replica, master):
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
