"""Physical floors: the cheapest round trips to the same servers, timed beside the figures.

A figure's ratio to its floor is what these noisy, shared machines can compare from
run to run: the floor is timed right after each measured call ("paired"), so both
see the same moment's loopback and fsync costs.

- `MySQLFloor.commit()`: one single-row INSERT and its durable COMMIT (asyncmy, the
  driver the mysql store uses): the least a durable append can cost.
- `RedisFloor.rpush()`: one RPUSH over a bare asyncio connection, its command bytes
  made in advance: the least any asyncio Redis client pays for a round trip.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote, urlsplit

from .cleanup import _connect
from .timing import Report

PAYLOAD = b"x" * 300
TIMEOUT = 10.0


class MySQLFloor:
    """A durable single-row INSERT commit on a table of its own (dropped on close)."""

    def __init__(self, url: str, table: str) -> None:
        self.url = url
        self.table = table
        self.conn: Any = None

    async def open(self) -> None:
        self.conn = await _connect(self.url, with_database=True, autocommit=False)
        async with self.conn.cursor() as cur:
            await cur.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                "payload VARBINARY(512) NOT NULL) ENGINE=InnoDB"
            )
        await self.conn.commit()

    async def commit(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            async with self.conn.cursor() as cur:
                await cur.execute(f"INSERT INTO {self.table} (payload) VALUES (%s)", (PAYLOAD,))
            await self.conn.commit()

    async def close(self) -> None:
        if self.conn is not None:
            async with self.conn.cursor() as cur:
                await cur.execute(f"DROP TABLE IF EXISTS {self.table}")
            await self.conn.commit()
            self.conn.close()


class RedisFloor:
    """RPUSH of a 300-byte value to one list over a bare connection (the list deleted on close)."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key.encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.command = _resp(b"RPUSH", self.key, PAYLOAD)

    async def open(self) -> None:
        parts = urlsplit(self.url)
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379), TIMEOUT
        )
        if parts.password:
            await self._call(_resp(b"AUTH", unquote(parts.username or "default").encode(),
                                   unquote(parts.password).encode()))
        database = parts.path.lstrip("/")
        if database and database != "0":
            await self._call(_resp(b"SELECT", database.encode()))

    async def rpush(self) -> None:
        await self._call(self.command)

    async def _call(self, command: bytes) -> bytes:
        assert self.reader is not None and self.writer is not None
        async with asyncio.timeout(TIMEOUT):
            self.writer.write(command)
            line = await self.reader.readline()
        if not line or line.startswith(b"-"):
            raise RuntimeError(f"the Redis floor's command failed: {line[:80]!r}")
        return line

    async def close(self) -> None:
        if self.writer is not None:
            await self._call(_resp(b"DEL", self.key))
            self.writer.close()
            await self.writer.wait_closed()


def _resp(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


class Floors:
    """Both floors; `pair` times them once each, right after a measured call."""

    COMMIT = "floor: commit"
    RPUSH = "floor: rpush"
    COMMIT_RPUSH = "floor: commit+rpush"

    def __init__(self, mysql: MySQLFloor, redis: RedisFloor) -> None:
        self.mysql = mysql
        self.redis = redis

    async def open(self) -> None:
        await self.mysql.open()
        await self.redis.open()

    async def close(self) -> None:
        try:
            await self.redis.close()
        finally:
            await self.mysql.close()

    async def pair_rpush(self, report: Report, figure: str) -> None:
        await report.series(figure, self.RPUSH).measure(self.redis.rpush)

    async def pair_append(self, report: Report, figure: str) -> None:
        """A commit and an RPUSH, each its own series, and their sum (the append's floor)."""
        commit, rpush = report.series(figure, self.COMMIT), report.series(figure, self.RPUSH)
        await commit.measure(self.mysql.commit)
        await rpush.measure(self.redis.rpush)
        both = report.series(figure, self.COMMIT_RPUSH)
        both.seconds.append(commit.seconds[-1] + rpush.seconds[-1])
        both.cpu.append(commit.cpu[-1] + rpush.cpu[-1])
