"""Outages: typed errors within the deadline, no secrets in messages, and recovery."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncmy
import pytest

from ifriend.errors import BackendTimeoutError, BackendUnavailableError, StorageError
from ifriend.sessions import AppendOutcome, Revision, SessionKey
from ifriend_mysql import MySQLSettings, MySQLStore
from ifriend_mysql.failures import translate

from .helpers import query, raw_connect, record


async def _created(store: Any, key: SessionKey) -> None:
    await store.create(
        key, incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=1.0
    )


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port or 3306}"
    return urlunsplit(parts._replace(netloc=netloc))


async def _server_pid(url: str) -> int:
    """The pid of the mariadbd we talk to, if its pid file is on this machine."""
    ((pid_file,),) = await query(url, "SELECT @@pid_file")
    path = Path(pid_file)
    if not path.is_absolute() or not path.exists():
        pytest.skip(f"the server's pid file {pid_file} is not on this machine")
    pid = int(path.read_text().strip())
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    if not comm.startswith(("mariadbd", "mysqld")):
        pytest.skip(f"pid {pid} from {pid_file} is {comm!r}, not the server")
    return pid


@pytest.fixture
def resume_guard() -> Iterator[list[int]]:
    """Pids to SIGCONT at teardown, whatever happened (the server is shared)."""
    stopped: list[int] = []
    yield stopped
    for pid in stopped:
        os.kill(pid, signal.SIGCONT)


async def test_a_stopped_server_times_out_and_the_pool_recovers(
    make_store: Any, mysql_url: str, app_name: str, resume_guard: list[int]
) -> None:
    store = await make_store(timeout_seconds=1.0, pool_min=1, pool_max=2)
    key = SessionKey(app_name, "u", "s")
    await _created(store, key)
    rec = record(state={"k": 1})
    pid = await _server_pid(mysql_url)
    resume_guard.append(pid)
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(BackendTimeoutError) as info:
            await store.append(key, rec, expected=Revision("inc", 0))
        elapsed = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    assert elapsed < 3.0
    assert "append" in str(info.value) and "ifriend:" not in str(info.value)
    # The server may still run the abandoned batch after it resumes: the outcome of a
    # timed-out append is unknown, and retrying the same event is how a caller settles it.
    await store.ping()
    retried = await store.append(key, rec, expected=Revision("inc", 0))
    assert retried.outcome in (AppendOutcome.APPLIED, AppendOutcome.DUPLICATE)
    loaded = await store.load(key)
    assert loaded.revision == Revision("inc", 1) and loaded.state == {"k": 1}


async def test_a_held_lock_times_out_and_the_abandoned_write_dies(
    make_store: Any, mysql_url: str, app_name: str
) -> None:
    store = await make_store(timeout_seconds=1.0)
    key = SessionKey(app_name, "u", "s")
    await _created(store, key)
    blocker = await raw_connect(mysql_url)
    try:
        cur = blocker.cursor()
        await cur.execute("START TRANSACTION")
        await cur.execute(
            f"SELECT pk FROM {store.tables.sessions} WHERE app_name = %s FOR UPDATE", (app_name,)
        )
        await cur.fetchall()
        rec = record()
        started = time.monotonic()
        with pytest.raises(BackendTimeoutError):
            await store.append(key, rec, expected=Revision("inc", 0))
        assert time.monotonic() - started < 3.0
        await asyncio.sleep(1.5)  # past the server-side lock wait timeout of the orphan
        await cur.execute("ROLLBACK")
    finally:
        await blocker.ensure_closed()
    result = await store.append(key, rec, expected=Revision("inc", 0))
    assert result.outcome is AppendOutcome.APPLIED  # the abandoned attempt did not commit


async def test_killed_pool_connections_are_replaced(
    make_store: Any, mysql_url: str, app_name: str
) -> None:
    store = await make_store(pool_min=1, pool_max=1)
    key = SessionKey(app_name, "u", "s")
    await _created(store, key)
    from ifriend_mysql.statements import Batch

    ((connection_id,),) = (await store._batch("id", Batch().add("SELECT CONNECTION_ID()")))[0].rows
    await query(mysql_url, f"KILL CONNECTION {int(connection_id)}")
    await asyncio.sleep(0.1)
    loaded = await store.load(key)  # a dead pooled connection costs a reconnect, not an error
    assert loaded is not None and loaded.revision == Revision("inc", 0)
    result = await store.append(key, record(), expected=Revision("inc", 0))
    assert result.outcome is AppendOutcome.APPLIED


async def test_an_unreachable_server_is_unavailable_quickly() -> None:
    store = MySQLStore(
        MySQLSettings(url="mysql://bot:sup3r-secret@127.0.0.1:1/chat", timeout_seconds=2)
    )
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        await store.connect()
    assert time.monotonic() - started < 3.0
    message = str(info.value)
    assert "bot@127.0.0.1:1/chat" in message and "sup3r-secret" not in message
    assert info.value.__cause__ is None


async def test_a_wrong_password_is_unavailable_without_the_password(mysql_url: str) -> None:
    store = MySQLStore(MySQLSettings(url=_with_password(mysql_url, "wrong-pass-123")))
    with pytest.raises(BackendUnavailableError) as info:
        await store.connect()
    assert "1045" in str(info.value) and "wrong-pass-123" not in str(info.value)


async def test_calls_before_connect_or_after_close_are_storage_errors(
    make_store: Any, app_name: str
) -> None:
    store = await make_store(connect=False)
    with pytest.raises(StorageError, match="not connected"):
        await store.ping()
    await store.connect()
    await store.ping()
    await store.close()
    with pytest.raises(StorageError, match="not connected"):
        await store.load(SessionKey(app_name, "u", "s"))
    await store.close()  # twice is fine


def test_server_messages_never_reach_our_errors() -> None:
    secret = "the-users-secret-value"
    cases = [
        asyncmy.errors.IntegrityError(1062, f"Duplicate entry '{secret}' for key 'PRIMARY'"),
        asyncmy.errors.OperationalError(2013, f"Lost connection during query {secret}"),
        asyncmy.errors.DataError(1406, f"Data too long for column '{secret}'"),
        asyncmy.errors.OperationalError(4025, f"CONSTRAINT failed for '{secret}'"),
    ]
    for exc in cases:
        error = translate(exc, operation="append", server="bot@db:3306/chat", driver=asyncmy)
        assert secret not in str(error) and str(exc.args[0]) in str(error)
    lost = translate(cases[1], operation="append", server="s", driver=asyncmy)
    assert isinstance(lost, BackendUnavailableError)
    data = translate(cases[2], operation="append", server="s", driver=asyncmy)
    assert isinstance(data, StorageError) and not isinstance(data, BackendUnavailableError)
