"""Fixtures of the MySQL store tests: the real MariaDB of scripts/servers.sh.

Every test module gets its own table prefix (tables created by the store on
connect, dropped when the module ends); every test its own app names.
Without IFRIEND_TEST_MYSQL_URL the tests are skipped, unless CI is set: then they fail.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from ifriend.sessions import SessionService
from ifriend_bench.cleanup import drop_tables


@pytest.fixture(scope="module")
def table_prefix(mysql_url: str) -> Iterator[str]:
    """A prefix of this module alone; its tables are dropped when the module ends."""
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    yield prefix
    asyncio.run(drop_tables(mysql_url, prefix))


@pytest.fixture
def fresh_prefix(mysql_url: str) -> Iterator[str]:
    """A prefix no table has yet (for schema tests); dropped after the test."""
    prefix = f"f{uuid.uuid4().hex[:10]}_"
    yield prefix
    asyncio.run(drop_tables(mysql_url, prefix))


@pytest.fixture(autouse=True)
def no_server_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The store's statements raise no server warnings: asyncmy would spend a round trip
    on SHOW WARNINGS and log their text, which can quote data."""
    caplog.set_level(logging.WARNING, logger="asyncmy")
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    warnings = [r.getMessage() for r in records if r.name.startswith("asyncmy")]
    assert not warnings, warnings


MakeStore = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make_store(mysql_url: str, table_prefix: str) -> AsyncIterator[MakeStore]:
    """`await make_store(timeout_seconds=1, store_class=...)`: a connected store, closed after."""
    from ifriend_mysql import MySQLSettings, MySQLStore

    stores: list[Any] = []

    async def make(connect: bool = True, store_class: type = MySQLStore, **overrides: Any) -> Any:
        options = {"url": mysql_url, "table_prefix": table_prefix, **overrides}
        store = store_class(MySQLSettings(**options))
        stores.append(store)
        if connect:
            await store.connect()
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
async def store(make_store: MakeStore) -> Any:
    return await make_store()


@pytest.fixture
def service(store: Any) -> SessionService:
    return SessionService(store)


@pytest.fixture
def app_name() -> str:
    """An app name of this test alone (sessions are isolated by it)."""
    return f"app-{uuid.uuid4().hex[:12]}"
