"""Helpers of the MySQL tests: raw server access, counting and fault injection."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import asyncmy

from ifriend.sessions.store import EventRecord
from ifriend_mysql import MySQLStore
from ifriend_mysql.statements import Batch, Result

from ..records import make_record


async def raw_connect(url: str) -> Any:
    """A plain asyncmy connection (autocommit) to the test database."""
    parts = urlsplit(url)
    return await asyncmy.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        database=parts.path.lstrip("/"),
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=5,
    )


async def query(url: str, sql: str, args: Any = None) -> list[tuple]:
    conn = await raw_connect(url)
    try:
        cur = conn.cursor()
        await cur.execute(sql, args)
        return list(await cur.fetchall() or ())
    finally:
        await conn.ensure_closed()


def record(**fields: Any) -> EventRecord:
    """An `EventRecord` without content (see `tests.records.make_record`)."""
    return make_record(text=None, **fields)


class CountingStore(MySQLStore):
    """Counts round trips (one per batch sent) and statements, per operation kind."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.round_trips = 0
        self.statements = 0
        self.compound_batches = 0

    async def _execute(self, conn: Any, batch: Batch) -> list[Result]:
        self.round_trips += 1
        self.statements += len(batch.parts)
        self.compound_batches += batch.compound
        return await super()._execute(conn, batch)

    async def session_status(self, *names: str) -> dict[str, int]:
        """`SHOW SESSION STATUS` counters of the (single) pooled connection."""
        marks = ", ".join("%s" for _ in names)
        batch = Batch().add(f"SHOW SESSION STATUS WHERE Variable_name IN ({marks})", names)
        rows = (await MySQLStore._batch(self, "status", batch))[0].rows or ()
        return {name: int(value) for name, value in rows}


class FailingStore(MySQLStore):
    """Injects a failure into append batches, after every write and before COMMIT.

    `mode = "error"` replaces COMMIT by a failing statement; `mode = "kill"` makes the
    batch sleep instead, and a second connection kills it mid-transaction.
    """

    mode = "error"
    kill_url = ""
    armed = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempts = 0

    async def _execute(self, conn: Any, batch: Batch) -> list[Result]:
        if not self.armed or "event" not in batch.names:
            return await super()._execute(conn, batch)
        self.attempts += 1
        broken = Batch(list(batch.parts), list(batch.args), dict(batch.names), batch.compound)
        if self.mode == "error":
            broken.parts[-1] = "SELECT no_such_column FROM DUAL"
            return await super()._execute(conn, broken)
        cur = conn.cursor()
        await cur.execute("SELECT CONNECTION_ID()")
        ((connection_id,),) = await cur.fetchall()
        broken.parts[-1] = "DO SLEEP(30)"
        killer = asyncio.create_task(_kill_soon(self.kill_url, connection_id))
        try:
            return await super()._execute(conn, broken)
        finally:
            await killer


async def _kill_soon(url: str, connection_id: int) -> None:
    await asyncio.sleep(0.2)
    await query(url, f"KILL CONNECTION {int(connection_id)}")
