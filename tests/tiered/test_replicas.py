"""Two replicas in two processes on one Redis and one MariaDB keep one history."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

from ifriend_bench.cleanup import delete_redis_keys, drop_tables

REPLICA = Path(__file__).with_name("replica.py")


class Replica:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, settings: dict) -> Replica:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(REPLICA), json.dumps(settings),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        replica = cls(process)
        assert (await replica.read())["ready"]
        return replica

    async def read(self) -> dict:
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=30)
        assert line, "the replica exited"
        return json.loads(line)

    async def ask(self, **command) -> dict:
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()
        answer = await self.read()
        assert answer["ok"], answer
        return answer

    async def stop(self) -> None:
        self.process.stdin.close()
        await asyncio.wait_for(self.process.wait(), timeout=30)


async def test_alternating_replicas_never_read_a_stale_history(redis_url, mysql_url):
    run = uuid.uuid4().hex[:10]
    settings = {
        "session": {"backend": "tiered"},
        "backends": {
            "redis": {"url": redis_url, "key_prefix": f"ifriend-test-{run}"},
            "mysql": {"url": mysql_url, "table_prefix": f"ift_{run}_"},
        },
    }
    replicas = [await Replica.start(settings), await Replica.start(settings)]
    try:
        expected: list[str] = []
        for turn in range(12):
            writer, reader = replicas[turn % 2], replicas[(turn + 1) % 2]
            text = f"turn {turn} by replica {turn % 2}"
            await writer.ask(op="append", text=text)
            expected.append(text)
            # The read starts after the append was acknowledged: it must include it.
            assert (await reader.ask(op="get"))["texts"] == expected
        for replica in replicas:
            assert (await replica.ask(op="get"))["texts"] == expected
    finally:
        for replica in replicas:
            await replica.stop()
        await drop_tables(mysql_url, f"ift_{run}_")
        await delete_redis_keys(redis_url, f"ifriend-test-{run}")
