"""`MySQLStore`: the durable session tier, one row per event.

Each operation checks a connection out of an asyncmy pool, sends its whole
transaction as one multi-statement batch, and runs under an asyncio deadline
(`timeout_seconds`). A connection whose operation failed or timed out is
closed, never returned to the pool in an unknown state.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError

from ifriend.plugin_api import (
    AppendOutcome,
    AppendResult,
    EventRecord,
    PluginError,
    Revision,
    SessionHeader,
    SessionKey,
    StorageError,
    StoredSession,
    decode_events,
    decode_value,
    encode_value,
    telemetry,
)

from . import failures, schema, spans, statements
from .settings import MySQLSettings
from .statements import Batch, Result

T = TypeVar("T")

# Every connection is strict (no silent truncation) and keeps backslash escapes
# (the driver's quoting needs them). Its lock waits end with the deadline, so a
# batch abandoned by a timed-out caller cannot sit on the server for 50 s.
SQL_MODE = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO'"
SCHEMA_DEADLINE_SECONDS = 30.0
DEADLOCK_RETRIES = 3
_DOMAIN_ERRORS = (AlreadyExistsError, SessionNotFoundError, StaleSessionError)
_STALE = (
    "The session was modified in storage since it was loaded (another writer "
    "appended first). Reload the session and retry."
)


def load_driver() -> Any:
    """asyncmy, imported on first use; a clear error if the extra is not installed."""
    try:
        return importlib.import_module("asyncmy")
    except ImportError:
        raise PluginError(
            "the mysql session backend needs asyncmy: pip install 'ifriend[mysql]'"
        ) from None


class MySQLStore:
    """A `SessionStore` in MySQL/MariaDB; also keeps the tiered store's repair queue."""

    name = "mysql"

    def __init__(self, settings: MySQLSettings) -> None:
        self.settings = settings
        self.target = settings.target()
        self.tables = schema.Tables(settings.table_prefix)
        self._timeout = settings.timeout_seconds
        self._driver: Any = None
        self._pool: Any = None
        # MariaDB runs a transaction sent as one compound statement (`statements.Batch`).
        self._compound = False
        target = self.target
        # A client span per round trip: database semantic conventions, never a statement.
        self._span_attributes = {
            **telemetry.db_attributes(
                "mysql",
                address=target.unix_socket or target.host,
                port=None if target.unix_socket else target.port,
                namespace=target.database,
            ),
            "ifriend.tier": "mysql",
        }

    # --- lifecycle -------------------------------------------------------------------------

    def _connect_kwargs(self) -> dict[str, Any]:
        return {
            **self.target.connect_kwargs(),
            "charset": "utf8mb4",
            "autocommit": True,
            "sql_mode": SQL_MODE,
            "init_command": "SET SESSION innodb_lock_wait_timeout = "
            f"{max(1, math.ceil(self._timeout))}",
            "connect_timeout": self._timeout,
            "binary_prefix": True,
            "program_name": "ifriend",
        }

    async def connect(self) -> None:
        """Create or migrate the schema (see `schema`), then open the pool."""
        if self._pool is not None:
            return
        self._driver = driver = load_driver()
        try:
            async with asyncio.timeout(self._timeout):
                conn = await driver.connect(**self._connect_kwargs())
            if "mariadb" in str(conn.get_server_info()).lower():
                self._span_attributes[telemetry.DB_SYSTEM] = "mariadb"
                self._compound = True
            try:
                await self._ensure_schema(conn)
            except BaseException:
                conn.close()
                raise
            async with asyncio.timeout(self._timeout):
                await conn.ensure_closed()
                self._pool = await driver.create_pool(
                    minsize=self.settings.pool_min,
                    maxsize=self.settings.pool_max,
                    **self._connect_kwargs(),
                )
        except Exception as exc:
            raise failures.translate(
                exc, operation="connect", server=self.target.describe(), driver=driver
            ) from None

    async def _ensure_schema(self, conn: Any) -> None:
        """Check the schema version (one query); migrate under the schema lock if behind."""
        no_such_table = self._driver.errors.MySQLError
        async with asyncio.timeout(self._timeout):
            found = await schema.current_version(conn, self.tables, no_such_table)
        if found >= schema.LATEST:
            return
        # DDL, and waiting for a replica that migrates first, get a longer deadline.
        deadline = max(SCHEMA_DEADLINE_SECONDS, self._timeout)
        async with asyncio.timeout(deadline):
            await schema.migrate(
                conn,
                self.tables,
                found=found,
                lock=schema.lock_name(self.target.database, self.tables.prefix),
                lock_wait_seconds=max(1, int(deadline) - 1),
                create=self.settings.create_schema,
                no_such_table=no_such_table,
            )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.close()
        try:
            async with asyncio.timeout(self._timeout):
                await pool.wait_closed()
        except TimeoutError:
            pool.terminate()

    # --- the one way statements reach the server -------------------------------------------

    async def _execute(self, conn: Any, batch: Batch) -> list[Result]:
        """Send `batch` (one round trip) and read every result it produces."""
        spans.sent(batch.parts)
        cur = conn.cursor()
        results: list[Result] = []
        await cur.execute(batch.sql, batch.args or None)
        while True:
            rows = list(await cur.fetchall()) if cur.description else None
            results.append(Result(cur.rowcount, cur.lastrowid, rows))
            if not await cur.nextset():
                break
        return results

    async def _run(
        self, operation: str, work: Callable[[Any], Awaitable[T]], *, retry: bool = True
    ) -> T:
        """`_attempt` in the call's client span (named by the statements it sends, `spans`)."""
        attributes = self._span_attributes
        with telemetry.operation_span(
            telemetry.span_name(
                None, attributes.get(telemetry.DB_NAMESPACE), attributes[telemetry.DB_SYSTEM]
            ),
            kind=telemetry.SpanKind.CLIENT,
            **attributes,
            **{telemetry.CALL: operation},
        ) as span, spans.naming(span, attributes):
            return await self._attempt(operation, work, retry=retry)

    async def _attempt(
        self, operation: str, work: Callable[[Any], Awaitable[T]], *, retry: bool = True
    ) -> T:
        """Run `work(connection)` under the deadline, translating driver failures.

        When the connection turns out dead (server restarted, connection killed),
        `work` is retried once on a fresh one if `retry` (the operation is idempotent);
        a deadlock victim (rolled back whole) is retried a few times. All within one deadline.
        """
        pool = self._pool
        if pool is None:
            raise StorageError(f"the mysql store is not connected ({operation})")
        driver = self._driver
        lost_retries = 1 if retry else 0
        deadlocks = 0
        try:
            async with asyncio.timeout(self._timeout):
                while True:
                    conn = await pool.acquire()
                    try:
                        result = await work(conn)
                    except _DOMAIN_ERRORS:
                        pool.release(conn)
                        raise
                    except BaseException as exc:
                        conn.close()  # state unknown: never back to the pool
                        pool.release(conn)
                        if failures.is_connection_lost(exc, driver) and lost_retries:
                            lost_retries -= 1
                            _retried((1 if retry else 0) - lost_retries + deadlocks)
                            continue
                        if failures.error_code(exc) == failures.DEADLOCK and (
                            deadlocks < DEADLOCK_RETRIES
                        ):
                            deadlocks += 1
                            _retried((1 if retry else 0) - lost_retries + deadlocks)
                            continue
                        raise
                    pool.release(conn)
                    return result
        except (*_DOMAIN_ERRORS, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise failures.translate(
                exc, operation=operation, server=self.target.describe(), driver=driver
            ) from None

    async def _batch(self, operation: str, batch: Batch) -> list[Result]:
        return await self._run(operation, lambda conn: self._execute(conn, batch))

    # --- SessionStore ----------------------------------------------------------------------

    async def ping(self) -> None:
        await self._batch("ping", Batch().add("SELECT 1"))

    async def create(
        self,
        key: SessionKey,
        *,
        incarnation: str,
        state: dict[str, Any],
        app_delta: dict[str, Any],
        user_delta: dict[str, Any],
        created_at: float,
    ) -> StoredSession:
        state_json = encode_value(state)
        batch = statements.create(
            self.tables,
            key,
            incarnation=incarnation,
            state_json=state_json,
            created_at=created_at,
            app_delta=app_delta,
            user_delta=user_delta,
        )

        async def work(conn: Any) -> list[Result]:
            try:
                return await self._execute(conn, batch)
            except self._driver.errors.IntegrityError as exc:
                if failures.error_code(exc) != failures.DUPLICATE_KEY:
                    raise
            # Outside the handler, so the typed error chains no driver error.
            await self._execute(conn, Batch().add("ROLLBACK"))
            raise AlreadyExistsError(f"Session with id {key.session_id} already exists.")

        # Not retried: a create whose reply was lost would come back as "already exists".
        results = await self._run("create", work, retry=False)
        app_version, app_state = _scope(batch.pick(results, "app_state"))
        user_version, user_state = _scope(batch.pick(results, "user_state"))
        return StoredSession(
            key=key,
            revision=Revision(incarnation, 0),
            last_update_time=created_at,
            state=decode_value(state_json),
            app_state=app_state,
            user_state=user_state,
            events=[],
            payloads=[],
            app_state_version=app_version,
            user_state_version=user_version,
        )

    async def load(
        self,
        key: SessionKey,
        *,
        num_recent_events: int | None = None,
        after_timestamp: float | None = None,
    ) -> StoredSession | None:
        batch = statements.load(self.tables, key, num_recent_events, after_timestamp)
        results = await self._batch("load", batch)
        rows = batch.pick(results, "session").rows
        if not rows:
            return None
        incarnation, version, update_time, state, a_version, a_state, u_version, u_state = rows[0]
        payloads = [row[0] for row in batch.pick(results, "events").rows or ()]
        return StoredSession(
            key=key,
            revision=Revision(_text(incarnation), int(version)),
            last_update_time=float(update_time),
            state=decode_value(state),
            app_state=decode_value(a_state) if a_state is not None else {},
            user_state=decode_value(u_state) if u_state is not None else {},
            events=decode_events(payloads),
            payloads=payloads,
            app_state_version=int(a_version or 0),
            user_state_version=int(u_version or 0),
        )

    async def append(
        self, key: SessionKey, record: EventRecord, *, expected: Revision
    ) -> AppendResult:
        if expected.version < 0:  # a copy no log stands at: only a retry can succeed
            return await self._run("append", lambda c: self._diagnose(c, key, record, False))
        batch = statements.append(self.tables, key, record, expected, compound=self._compound)

        async def work(conn: Any) -> AppendResult:
            try:
                results = await self._execute(conn, batch)
            except self._driver.errors.IntegrityError as exc:
                # 1048: the guarded UPDATE matched nothing; 1062: the event id is stored.
                if failures.error_code(exc) not in (failures.BAD_NULL, failures.DUPLICATE_KEY):
                    raise
                results = None
            if results is None:  # diagnosed outside the handler: its errors chain no driver error
                return await self._diagnose(conn, key, record, True)
            if not batch.compound and batch.pick(results, "update").rowcount != 1:  # pragma: no cover
                raise StorageError("append: the revision guard did not hold")
            return AppendResult(
                AppendOutcome.APPLIED,
                Revision(expected.incarnation, expected.version + 1),
                record.timestamp,
                app_state_version=_version(batch, results, "app"),
                user_state_version=_version(batch, results, "user"),
            )

        # Retried on a dead connection: a replay of a committed append is a DUPLICATE.
        return await self._run("append", work)

    async def _diagnose(
        self, conn: Any, key: SessionKey, record: EventRecord, rollback: bool
    ) -> AppendResult:
        batch = statements.diagnose(self.tables, key, record.event_id, rollback=rollback)
        rows = batch.pick(await self._execute(conn, batch), "session").rows
        if not rows:
            raise SessionNotFoundError(f"Session {key.session_id} not found.")
        incarnation, version, update_time, stored = rows[0]
        if not stored:
            raise StaleSessionError(_STALE)
        return AppendResult(
            AppendOutcome.DUPLICATE,
            Revision(_text(incarnation), int(version)),
            float(update_time),
        )

    async def delete(self, key: SessionKey) -> None:
        await self._batch("delete", statements.delete(self.tables, key))

    async def list(self, app_name: str, user_id: str | None) -> list[SessionHeader]:
        batch = statements.list_sessions(self.tables, app_name, user_id)
        results = await self._batch("list", batch)
        app_rows = batch.pick(results, "app").rows
        app_state = decode_value(app_rows[0][0]) if app_rows else {}
        users = {_text(uid): decode_value(s) for uid, s in batch.pick(results, "users").rows or ()}
        headers = []
        for uid, sid, update_time, state in batch.pick(results, "sessions").rows or ():
            uid = _text(uid)
            headers.append(
                SessionHeader(
                    key=SessionKey(app_name, uid, _text(sid)),
                    last_update_time=float(update_time),
                    state=decode_value(state),
                    app_state=app_state,
                    user_state=users.get(uid, {}),
                )
            )
        return headers

    async def get_user_state(self, app_name: str, user_id: str) -> dict[str, Any]:
        batch = Batch().add(
            f"SELECT state FROM {self.tables.user_state} WHERE app_name = %s AND user_id = %s",
            [app_name, user_id],
        )
        rows = (await self._batch("get_user_state", batch))[0].rows
        return decode_value(rows[0][0]) if rows else {}

    # --- the tiered store's repair queue and outage rows -----------------------------------

    async def mark_for_repair(self, key: SessionKey, *, outage: str | None = None,
                              outage_seconds: float = 0.0) -> bool:
        """Remember that Redis may not mirror this session (a committed write missed it).

        With `outage` (a replica id), the same round trip extends that replica's outage
        row by `outage_seconds`, and the result says whether the row had stayed alive.
        """
        batch = Batch().add(
            f"INSERT INTO {self.tables.redis_repairs} (app_name, user_id, session_id, created_at) "
            "VALUES (%s, %s, %s, %s)",
            [key.app_name, key.user_id, key.session_id, time.time()],
        )
        if outage is not None:
            batch.add(*self._extend_outage(outage, outage_seconds), name="outage")
        results = await self._batch("mark_for_repair", batch)
        return outage is None or batch.pick(results, "outage").rowcount == 1

    def _extend_outage(self, replica: str, seconds: float) -> tuple[str, list[Any]]:
        now = "UNIX_TIMESTAMP(NOW(6))"
        return (
            f"UPDATE {self.tables.redis_outages} SET expires_at = {now} + %s "
            f"WHERE replica = %s AND expires_at > {now}",
            [seconds, replica],
        )

    async def begin_outage(self, replica: str, seconds: float) -> None:
        """Start (or extend) `replica`'s outage row: it lives `seconds` on MySQL's clock."""
        now = "UNIX_TIMESTAMP(NOW(6))"
        batch = Batch().add(
            f"INSERT INTO {self.tables.redis_outages} (replica, started_at, expires_at) "
            f"VALUES (%s, {now}, {now} + %s) "
            f"ON DUPLICATE KEY UPDATE started_at = IF(expires_at > {now}, started_at, {now}), "
            f"expires_at = {now} + %s",
            [replica, seconds, seconds],
        )
        await self._batch("begin_outage", batch)

    async def extend_outage(self, replica: str, seconds: float) -> bool:
        """Keep `replica`'s outage row alive; False if it had already expired (or is gone)."""
        batch = Batch().add(*self._extend_outage(replica, seconds))
        return (await self._batch("extend_outage", batch))[0].rowcount == 1

    async def end_outage(self, replica: str) -> None:
        batch = Batch().add(f"DELETE FROM {self.tables.redis_outages} WHERE replica = %s", [replica])
        await self._batch("end_outage", batch)

    async def redis_trust(self, limit: int) -> tuple[int, list[tuple[int, SessionKey]]]:
        """How many replicas are in a live outage, and the oldest `limit` repair marks."""
        batch = (
            Batch()
            .add(
                f"SELECT COUNT(*) FROM {self.tables.redis_outages} "
                "WHERE expires_at > UNIX_TIMESTAMP(NOW(6))",
                name="outages",
            )
            .add(
                f"SELECT pk, app_name, user_id, session_id FROM {self.tables.redis_repairs} "
                "ORDER BY pk LIMIT %s",
                [int(limit)],
                name="repairs",
            )
        )
        results = await self._batch("redis_trust", batch)
        outages = int(batch.pick(results, "outages").rows[0][0])
        rows = batch.pick(results, "repairs").rows or ()
        return outages, [(int(pk), SessionKey(_text(a), _text(u), _text(s))) for pk, a, u, s in rows]

    async def clear_repairs(self, ids: list[int]) -> None:
        if not ids:
            return
        marks = ", ".join("%s" for _ in ids)
        batch = Batch().add(
            f"DELETE FROM {self.tables.redis_repairs} WHERE pk IN ({marks})", [int(i) for i in ids]
        )
        await self._batch("clear_repairs", batch)


def _retried(times: int) -> None:
    """Record on the round trip's span, and on its operation, how often it was retried."""
    telemetry.current_span().set_attribute("ifriend.retries", times)
    telemetry.note({"ifriend.retries": times})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _scope(result: Result) -> tuple[int, dict[str, Any]]:
    if not result.rows:
        return 0, {}
    version, state = result.rows[0]
    return int(version), decode_value(state)


def _version(batch: Batch, results: list[Result], name: str) -> int | None:
    return batch.pick(results, name).lastrowid if name in batch.names else None
