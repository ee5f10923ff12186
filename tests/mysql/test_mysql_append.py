"""The hot path: one round trip per append, atomic, idempotent, parallel across sessions."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest
from google.adk.errors._stale_session_error import StaleSessionError

from ifriend.errors import BackendUnavailableError, StorageError
from ifriend.sessions import AppendOutcome, Revision, SessionKey

from .helpers import CountingStore, FailingStore, query, raw_connect, record

READS = ("Handler_read_key", "Handler_read_next", "Handler_read_prev", "Handler_read_rnd_next")


@pytest.fixture(autouse=True, params=["compound", "plain"])
def batch_form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test twice: appends as MariaDB compound statements (the store's choice on
    MariaDB), and as plain multi-statement batches (its choice on MySQL)."""
    from ifriend_mysql import statements

    if request.param == "plain":
        plain = statements.append
        monkeypatch.setattr(
            statements, "append", lambda *args, compound=False, **kwargs: plain(*args, **kwargs)
        )
    return request.param


async def _session_with(store: Any, key: SessionKey, n: int) -> Revision:
    await store.create(
        key, incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=1.0
    )
    for i in range(n):
        await store.append(key, record(timestamp=float(i)), expected=Revision("inc", i))
    return Revision("inc", n)


async def _cost(store: CountingStore, op: Any) -> tuple[int, int, dict[str, int]]:
    """Round trips, statements and rows the server touched (session status deltas) for `op`."""
    before = await store.session_status(*READS)
    trips, statements = store.round_trips, store.statements
    await op()
    trips, statements = store.round_trips - trips, store.statements - statements
    after = await store.session_status(*READS)
    return trips, statements, {k: after[k] - before[k] for k in READS}


async def test_append_cost_does_not_depend_on_session_length(
    make_store: Any, app_name: str
) -> None:
    store = await make_store(store_class=CountingStore, pool_min=1, pool_max=1)
    costs = {}
    for n in (10, 1000):
        key = SessionKey(app_name, "u", f"s{n}")
        revision = await _session_with(store, key, n - 1)
        # the app and user rows exist from here on, as they do in a long conversation
        await store.append(key, record(app={"a": 0}, user={"u": 0}), expected=revision)
        rec = record(state={"k": n}, app={"a": n}, user={"u": n})
        expected = Revision("inc", n)
        costs[n] = await _cost(store, partial(store.append, key, rec, expected=expected))
    for trips, statements, reads in costs.values():
        assert trips == 1  # the whole transaction in one round trip
        assert statements == 7  # START, DO, UPDATE, INSERT event, app, user, COMMIT
        assert sum(reads.values()) <= 5  # index lookups only: no scan of the history


async def test_plain_append_is_one_round_trip(
    make_store: Any, app_name: str, batch_form: str
) -> None:
    store = await make_store(store_class=CountingStore, pool_min=1, pool_max=1)
    key = SessionKey(app_name, "u", "s")
    revision = await _session_with(store, key, 3)
    compound = store.compound_batches
    trips, statements, _ = await _cost(
        store, lambda: store.append(key, record(), expected=revision)
    )
    assert (trips, statements) == (1, 5)
    # on MariaDB, one compound statement: a single answer when the COMMIT is done
    assert store.compound_batches - compound == (batch_form == "compound")
    loaded = await store.load(key)
    assert loaded.revision == Revision("inc", 4) and len(loaded.payloads) == 4


async def test_reading_the_tail_touches_only_the_tail(make_store: Any, app_name: str) -> None:
    store = await make_store(store_class=CountingStore, pool_min=1, pool_max=1)
    costs = {}
    for n in (50, 1000):
        key = SessionKey(app_name, "u", f"s{n}")
        await _session_with(store, key, n)

        async def tail(key: SessionKey = key, n: int = n) -> None:
            loaded = await store.load(key, num_recent_events=5, after_timestamp=n - 3.5)
            assert [e.timestamp for e in loaded.events] == [n - 3.0, n - 2.0, n - 1.0]

        costs[n] = await _cost(store, tail)
    for trips, statements, reads in costs.values():
        assert (trips, statements) == (1, 6)  # isolation, snapshot, session, cutoff, events, end
        assert sum(reads.values()) <= 20  # about the 3-5 rows read, not 50 or 1000


async def test_a_failed_append_leaves_nothing(make_store: Any, app_name: str) -> None:
    store = await make_store(store_class=FailingStore)
    key = SessionKey(app_name, "u", "s")
    await _session_with(store, key, 1)
    before = await store.load(key)
    store.armed = True
    with pytest.raises(StorageError) as info:
        await store.append(
            key, record(state={"k": 1}, app={"a": 1}, user={"u": 1}), expected=Revision("inc", 1)
        )
    assert "1054" in str(info.value) and "no_such_column" not in str(info.value)
    after = await store.load(key)
    assert after.revision == before.revision == Revision("inc", 1)
    assert after.payloads == before.payloads
    assert (after.state, after.app_state, after.user_state) == ({}, {}, {})
    assert (after.app_state_version, after.user_state_version) == (0, 0)


async def test_a_connection_killed_mid_transaction_leaves_nothing(
    make_store: Any, mysql_url: str, app_name: str
) -> None:
    store = await make_store(store_class=FailingStore)
    store.mode, store.kill_url = "kill", mysql_url
    key = SessionKey(app_name, "u", "s")
    await _session_with(store, key, 1)
    rec = record(state={"k": 1}, user={"u": 1})
    store.armed = True
    with pytest.raises(BackendUnavailableError) as info:
        await store.append(key, rec, expected=Revision("inc", 1))
    assert store.attempts == 2  # a lost connection is retried once, then reported
    assert "2013" in str(info.value) or "lost" in str(info.value)
    after = await store.load(key)
    assert after.revision == Revision("inc", 1) and len(after.payloads) == 1
    assert (after.state, after.user_state) == ({}, {})
    # the pool recovers: the same append now goes through, once
    store.armed = False
    result = await store.append(key, rec, expected=Revision("inc", 1))
    assert result.outcome is AppendOutcome.APPLIED and result.revision == Revision("inc", 2)


async def test_retry_after_a_lost_reply_is_a_duplicate(
    store: Any, mysql_url: str, app_name: str
) -> None:
    key = SessionKey(app_name, "u", "s")
    await _session_with(store, key, 2)
    rec = record(state={"k": 1}, app={"a": 1})
    first = await store.append(key, rec, expected=Revision("inc", 2))
    again = await store.append(key, rec, expected=Revision("inc", 2))  # the reply "was lost"
    assert first.outcome is AppendOutcome.APPLIED and again.outcome is AppendOutcome.DUPLICATE
    assert again.revision == first.revision == Revision("inc", 3)
    assert again.last_update_time == first.last_update_time
    rows = await query(
        mysql_url,
        f"SELECT COUNT(*) FROM {store.tables.events} e JOIN {store.tables.sessions} s "
        "ON s.pk = e.session_pk WHERE s.app_name = %s AND e.event_id = %s",
        (app_name, rec.event_id),
    )
    assert rows == [(1,)]
    loaded = await store.load(key)
    assert loaded.app_state_version == 1  # the duplicate did not apply its delta again
    # even at the current revision (an id already stored, retried by a fresh copy)
    same = await store.append(key, rec, expected=Revision("inc", 3))
    assert same.outcome is AppendOutcome.DUPLICATE and same.revision == Revision("inc", 3)
    # and through a copy no log stands at (version -1)
    odd = await store.append(key, rec, expected=Revision("inc", -1))
    assert odd.outcome is AppendOutcome.DUPLICATE
    with pytest.raises(StaleSessionError):
        await store.append(key, record(), expected=Revision("inc", -1))


async def test_concurrent_retries_of_one_event_store_it_once(store: Any, app_name: str) -> None:
    key = SessionKey(app_name, "u", "s")
    await _session_with(store, key, 0)
    rec = record(user={"n": 1})
    results = await asyncio.gather(
        *(store.append(key, rec, expected=Revision("inc", 0)) for _ in range(8))
    )
    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes == ["applied"] + ["duplicate"] * 7
    loaded = await store.load(key)
    assert loaded.revision == Revision("inc", 1) and loaded.user_state_version == 1


async def test_concurrent_writers_of_one_session_one_wins_per_revision(
    store: Any, app_name: str
) -> None:
    key = SessionKey(app_name, "u", "s")
    await _session_with(store, key, 0)

    async def attempt() -> str:
        try:
            await store.append(key, record(), expected=Revision("inc", 0))
            return "applied"
        except StaleSessionError:
            return "stale"

    outcomes = sorted(await asyncio.gather(*(attempt() for _ in range(8))))
    assert outcomes == ["applied"] + ["stale"] * 7
    assert (await store.load(key)).revision == Revision("inc", 1)


async def test_fifty_sessions_append_in_parallel_on_the_pool(
    make_store: Any, app_name: str
) -> None:
    store = await make_store(pool_min=1, pool_max=10)
    keys = [SessionKey(app_name, f"u{i % 5}", f"s{i}") for i in range(50)]
    await asyncio.gather(
        *(
            store.create(
                k, incarnation="inc", state={}, app_delta={}, user_delta={}, created_at=1.0
            )
            for k in keys
        )
    )

    async def writer(key: SessionKey) -> None:
        for i in range(5):
            await store.append(key, record(user={"n": i}), expected=Revision("inc", i))

    await asyncio.gather(*(writer(k) for k in keys))
    assert store._pool.size > 1  # the appends did not queue on one connection
    listed = await store.list(app_name, None)
    assert len(listed) == 50
    for key in keys[:5]:
        loaded = await store.load(key)
        assert loaded.revision == Revision("inc", 5)
        assert loaded.user_state == {"n": 4}


async def test_a_deadlock_victim_is_retried(store: Any, mysql_url: str, app_name: str) -> None:
    key = SessionKey(app_name, "u", "s")
    await _session_with(store, key, 0)
    await store.append(key, record(user={"n": 0}), expected=Revision("inc", 0))
    t = store.tables
    other = await raw_connect(mysql_url)
    try:
        cur = other.cursor()
        await cur.execute("START TRANSACTION")
        # a heavier transaction than one append, so InnoDB picks the append as the victim
        for i in range(50):
            await cur.execute(
                f"INSERT INTO {t.redis_repairs} (app_name, user_id, session_id, created_at) "
                "VALUES (%s, 'x', 'y', 0)",
                (app_name,),
            )
        await cur.execute(
            f"SELECT state FROM {t.user_state} WHERE app_name = %s FOR UPDATE", (app_name,)
        )
        await cur.fetchall()
        append = asyncio.create_task(
            store.append(key, record(user={"n": 1}), expected=Revision("inc", 1))
        )
        await asyncio.sleep(0.3)  # the append holds the session row, waits for the user row
        await cur.execute(
            f"SELECT pk FROM {t.sessions} WHERE app_name = %s FOR UPDATE", (app_name,)
        )  # deadlock: the append is rolled back, we get the row
        await cur.fetchall()
        assert not append.done()  # retried, now waiting for the session row
        await cur.execute("ROLLBACK")
        result = await append
    finally:
        await other.ensure_closed()
    assert result.outcome is AppendOutcome.APPLIED and result.revision == Revision("inc", 2)
    loaded = await store.load(key)
    assert loaded.revision == Revision("inc", 2) and loaded.user_state == {"n": 1}
