"""The schema: created on connect, idempotent, safe when replicas start together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ifriend.errors import StorageError
from ifriend_mysql import MySQLSettings, MySQLStore
from ifriend_mysql.schema import MIGRATIONS, Tables, script

from .helpers import query, raw_connect

SQL_FILE = Path(__file__).parents[2] / "config" / "sql" / "schema.sql"
ALL_VERSIONS = [(version,) for version, _ in MIGRATIONS]  # one row per migration


def _store(url: str, prefix: str, **overrides: object) -> MySQLStore:
    return MySQLStore(MySQLSettings(url=url, table_prefix=prefix, **overrides))


async def _tables(url: str, prefix: str) -> dict[str, tuple[str, str]]:
    rows = await query(
        url,
        "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE %s",
        (prefix.replace("_", "\\_") + "%",),
    )
    return {name: (engine, collation) for name, engine, collation in rows}


async def test_connect_creates_every_table_innodb_utf8mb4_bin(
    mysql_url: str, fresh_prefix: str
) -> None:
    store = _store(mysql_url, fresh_prefix)
    await store.connect()
    try:
        await store.ping()
    finally:
        await store.close()
    tables = await _tables(mysql_url, fresh_prefix)
    names = {
        f"{fresh_prefix}{n}"
        for n in (
            "sessions",
            "events",
            "app_state",
            "user_state",
            "redis_repairs",
            "redis_outages",
            "memory_users",
            "memories",
            "memory_terms",
            "memory_index",
            "memory_term_counts",
            "memory_tombstones",
            "schema_version",
        )
    }
    assert set(tables) == names
    assert set(tables.values()) == {("InnoDB", "utf8mb4_bin")}
    assert await query(mysql_url, f"SELECT version FROM {Tables(fresh_prefix).schema_version}") == ALL_VERSIONS
    id_types = await query(
        mysql_url,
        "SELECT DISTINCT DATA_TYPE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE %s "
        "AND COLUMN_NAME IN ('app_name', 'user_id', 'session_id', 'event_id')",
        (fresh_prefix.replace("_", "\\_") + "%",),
    )
    assert id_types == [("varbinary",)]


async def test_connecting_twice_is_idempotent(mysql_url: str, fresh_prefix: str) -> None:
    for _ in range(2):
        store = _store(mysql_url, fresh_prefix)
        await store.connect()
        await store.close()
    rows = await query(mysql_url, f"SELECT version FROM {Tables(fresh_prefix).schema_version}")
    assert rows == ALL_VERSIONS


async def test_replicas_starting_together_migrate_once(mysql_url: str, fresh_prefix: str) -> None:
    stores = [_store(mysql_url, fresh_prefix) for _ in range(4)]
    try:
        await asyncio.gather(*(s.connect() for s in stores))
        await asyncio.gather(*(s.ping() for s in stores))
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    rows = await query(mysql_url, f"SELECT version FROM {Tables(fresh_prefix).schema_version}")
    assert rows == ALL_VERSIONS


async def test_without_create_schema_a_missing_schema_is_a_clear_error(
    mysql_url: str, fresh_prefix: str
) -> None:
    store = _store(mysql_url, fresh_prefix, create_schema=False)
    with pytest.raises(StorageError, match="create_schema"):
        await store.connect()
    assert await _tables(mysql_url, fresh_prefix) == {}


async def test_the_sql_file_is_the_schema_and_can_be_applied_by_hand(
    mysql_url: str, fresh_prefix: str
) -> None:
    assert SQL_FILE.read_text() == script("ifriend_"), "regenerate config/sql/schema.sql"
    conn = await raw_connect(mysql_url)
    try:
        cur = conn.cursor()
        for statement in script(fresh_prefix).split(";\n"):
            lines = [line for line in statement.splitlines() if not line.startswith("--")]
            body = "\n".join(lines).strip()
            if body:
                await cur.execute(body)
    finally:
        await conn.ensure_closed()
    store = _store(mysql_url, fresh_prefix, create_schema=False)
    await store.connect()
    try:
        await store.ping()
    finally:
        await store.close()
