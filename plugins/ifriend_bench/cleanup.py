"""Removing what benchmarks and tests wrote to the servers."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit


async def _connect(url: str, *, with_database: bool, autocommit: bool = True) -> Any:
    """An asyncmy connection to the server of a `mysql://` URL (and to its database)."""
    import asyncmy

    parts = urlsplit(url)
    return await asyncmy.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/") if with_database else None,
        autocommit=autocommit,
        connect_timeout=10,
    )


async def execute(url: str, statement: str) -> None:
    """Run one statement on the server of a `mysql://` URL (outside its database)."""
    conn = await _connect(url, with_database=False)
    try:
        async with conn.cursor() as cur:
            await cur.execute(statement)
    finally:
        conn.close()


async def drop_tables(url: str, prefix: str) -> None:
    """Drop every table of the URL's database whose name starts with `prefix`."""
    conn = await _connect(url, with_database=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SHOW TABLES LIKE %s", (prefix.replace("_", "\\_") + "%",))
            tables = [row[0] for row in await cur.fetchall()]
            if tables:
                await cur.execute("DROP TABLE IF EXISTS " + ", ".join(f"`{t}`" for t in tables))
    finally:
        conn.close()


async def delete_redis_keys(url: str, prefix: str, *, cluster: bool = False) -> None:
    """Delete every key named `prefix:...` (on every master, for a Redis Cluster)."""
    import redis.asyncio as aioredis

    client = aioredis.RedisCluster.from_url(url) if cluster else aioredis.Redis.from_url(url)
    try:
        batch = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for i in range(0, len(batch), 1000):
            await client.delete(*batch[i : i + 1000])  # a cluster client splits it by slot
    finally:
        await client.aclose()
