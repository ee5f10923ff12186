"""The MySQL memory store: its tables, the FULLTEXT index for reports, term counts, failures."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.genai import types

from ifriend_bench.cleanup import _connect, drop_tables
from ifriend.errors import BackendTimeoutError, BackendUnavailableError
from ifriend.memory import MemoryService
from ifriend_mysql import MySQLMemoryStore, MySQLSettings
from ifriend_mysql.schema import LATEST, MIGRATIONS, Tables, render



def event(text: str) -> Event:
    return Event(author="user", invocation_id="i", content=types.Content(parts=[types.Part(text=text)]))


async def query(url: str, sql: str, args: Any = None) -> list[tuple]:
    conn = await _connect(url, with_database=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall() or ())
    finally:
        conn.close()


@pytest.fixture
def prefix(mysql_url: str) -> Iterator[str]:
    prefix = f"mm{uuid.uuid4().hex[:10]}_"
    yield prefix
    asyncio.run(drop_tables(mysql_url, prefix))


@pytest.fixture
async def service(mysql_url: str, prefix: str) -> AsyncIterator[MemoryService]:
    service = MemoryService(MySQLMemoryStore(MySQLSettings(url=mysql_url, table_prefix=prefix)))
    await service.connect()
    yield service
    await service.close()


@pytest.fixture(autouse=True)
def no_server_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No statement raises a server warning (asyncmy would log its text, which can quote data)."""
    caplog.set_level(logging.WARNING, logger="asyncmy")
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert not [r.getMessage() for r in records if r.name.startswith("asyncmy")]


async def test_memory_tables_are_innodb_utf8mb4_with_a_fulltext_index(service, mysql_url, prefix) -> None:
    rows = await query(
        mysql_url,
        "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE %s",
        (prefix.replace("_", "\\_") + "memor%",),
    )
    names = {name for name, _, _ in rows}
    assert names == {f"{prefix}{n}" for n in ("memory_users", "memories", "memory_index", "memory_terms", "memory_term_counts", "memory_tombstones")}
    assert {(engine, collation) for _, engine, collation in rows} == {("InnoDB", "utf8mb4_bin")}
    indexes = await query(
        mysql_url,
        "SELECT INDEX_NAME, INDEX_TYPE, COLUMN_NAME FROM information_schema.STATISTICS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND INDEX_TYPE = 'FULLTEXT'",
        (f"{prefix}memories",),
    )
    assert indexes == [("text", "FULLTEXT", "text")]


async def test_the_fulltext_index_answers_reports(service, mysql_url, prefix) -> None:
    await service.add_session_to_memory(
        Session(id="s", app_name="reports", user_id="u", events=[event("How do I reset my Password?"), event("Bonjour, ça va")])
    )
    t = Tables(prefix)
    rows = await query(
        mysql_url,
        f"SELECT u.user_id, m.text FROM {t.memories} m JOIN {t.memory_users} u ON u.pk = m.user_pk "
        "WHERE MATCH(m.text) AGAINST (%s IN BOOLEAN MODE)",
        ("password",),
    )
    assert rows == [(b"u", "How do I reset my Password?")]


async def test_term_counts_follow_adds_replacements_and_deletes(service, mysql_url, prefix) -> None:
    a, b, c = event("one two three"), event("two three four"), event("three four five")
    await service.add_session_to_memory(Session(id="s", app_name="app", user_id="u", events=[a, b, c]))
    await service.add_session_to_memory(Session(id="s", app_name="app", user_id="u", events=[a, c]))
    await service.delete_memory(app_name="app", user_id="u", memory_id=c.id)
    await service.add_events_to_memory(app_name="app", user_id="u", events=[b, c])
    t = Tables(prefix)
    counted = await query(mysql_url, f"SELECT term, n FROM {t.memory_term_counts} ORDER BY term")
    actual = await query(
        mysql_url, f"SELECT term, COUNT(*) FROM {t.memory_terms} GROUP BY term ORDER BY term"
    )
    assert counted == actual
    assert dict(counted)[b"w:two"] == 2 and b"w:five" not in dict(counted)


async def test_a_session_schema_is_migrated_to_the_memory_tables(mysql_url, prefix) -> None:
    t = Tables(prefix)
    conn = await _connect(mysql_url, with_database=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(render("CREATE TABLE {t.schema_version} (version INT UNSIGNED NOT NULL PRIMARY KEY, applied_at DOUBLE NOT NULL) {options}", t))
            for statement in MIGRATIONS[0][1]:
                await cur.execute(render(statement, t))
            await cur.execute(f"INSERT INTO {t.schema_version} VALUES (1, 0)")
    finally:
        conn.close()
    store = MySQLMemoryStore(MySQLSettings(url=mysql_url, table_prefix=prefix))
    await store.connect()
    await store.close()
    assert await query(mysql_url, f"SELECT MAX(version) FROM {t.schema_version}") == [(LATEST,)]
    assert LATEST >= 2


async def test_an_unreachable_server_is_a_typed_error_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = MySQLMemoryStore(MySQLSettings(url=f"mysql://u:hunter2@127.0.0.1:{port}/db", timeout_seconds=1))
    with pytest.raises(BackendUnavailableError) as info:
        await store.connect()
    assert "hunter2" not in str(info.value)


async def test_a_server_that_never_answers_times_out() -> None:
    accepted: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    store = MySQLMemoryStore(MySQLSettings(url=f"mysql://u:pw@127.0.0.1:{port}/db", timeout_seconds=0.5))
    started = time.monotonic()
    try:
        with pytest.raises(BackendTimeoutError):
            await store.connect()
    finally:
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("one_query_postings", [0, 10**9])
async def test_both_search_paths_agree_with_the_in_process_store(
    service, monkeypatch, one_query_postings
) -> None:
    """Searches with few postings are one statement, others read postings level by level."""
    from ifriend_bench.memory import SEARCH_KINDS, BenchConfig, Corpus
    from ifriend_inprocess import InProcessMemoryStore

    import ifriend_mysql.memory_search

    monkeypatch.setattr(ifriend_mysql.memory_search, "ONE_QUERY_POSTINGS", one_query_postings)
    model = MemoryService(InProcessMemoryStore())
    corpus = Corpus(BenchConfig("redis://unused", "mysql://unused", vocabulary=300, seed=5))
    events = [corpus.event() for _ in range(700)]
    for target in (service, model):
        await target.add_events_to_memory(app_name="app", user_id="u", events=events, session_id="s")
    for query in [corpus.query(kind) for kind in SEARCH_KINDS for _ in range(8)]:
        ours = await service.search_memory(app_name="app", user_id="u", query=query)
        expected = await model.search_memory(app_name="app", user_id="u", query=query)
        assert [m.id for m in ours.memories] == [m.id for m in expected.memories], query
