"""`MySQLMemoryStore`: long-term memory in MySQL/MariaDB, durable, no TTL.

Tables (schema version 2, docs/storage.md "MySQL memory tables"): `memory_users` (one row per app and
user), `memories` (one row per entry, its text FULLTEXT-indexed for reports),
`memory_terms` (the word index: one row per entry and term, keyed for a scan of one
term's postings newest first), `memory_index` (per entry, what a search checks: its
terms, its lowercased text), `memory_term_counts` (postings per term, to read the
rarest first) and `memory_tombstones` (deleted ids, never stored again).

Round trips: add 2 (lock the user's row and read what is stored; write and commit; one
more per 200 entries of a long session), delete 1, search 2 or more (`memory_search`).
The pool, deadlines and error mapping are the session store's (`MySQLStore`): the
memory store owns one, with the same settings.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ifriend.plugin_api import MemoryHit, MemoryRecord, MemoryScope, QueryTerm

from . import memory_search
from .schema import Tables
from .settings import MySQLSettings
from .statements import Batch
from .store import MySQLStore


ADD_CHUNK = 200  # entries per statement batch of an add


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def _term_list(terms: Sequence[str]) -> bytes:
    return b"\n" + b"\n".join(t.encode() for t in terms) + b"\n"


def _lock_user(t: Tables, scope: MemoryScope) -> tuple[str, list[Any]]:
    """Upsert the user's row (locking it) and leave its pk in LAST_INSERT_ID()."""
    return (
        f"INSERT INTO {t.memory_users} (app_name, user_id) VALUES (%s, %s) "
        "ON DUPLICATE KEY UPDATE pk = LAST_INSERT_ID(pk)",
        [scope.app_name, scope.user_id],
    )


@dataclass(slots=True)
class _Stored:
    pk: int
    session_id: str | None
    digest: bytes


class MySQLMemoryStore:
    """A `MemoryStore` in MySQL; writes of one user are serialized by its `memory_users` row."""

    name = "mysql"

    def __init__(self, settings: MySQLSettings) -> None:
        self.db = MySQLStore(settings)
        self.tables = self.db.tables

    async def connect(self) -> None:
        """Create or migrate the schema (memory tables included), then open the pool."""
        await self.db.connect()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        await self.db.ping()

    # -- add ----------------------------------------------------------------------------

    async def add(
        self,
        scope: MemoryScope,
        records: Sequence[MemoryRecord],
        *,
        session_id: str | None,
        replace: bool,
    ) -> int:
        if not records and not replace:
            return 0
        return await self.db._run("memory_add", lambda conn: self._add(conn, scope, records, session_id, replace))

    async def _add(
        self,
        conn: Any,
        scope: MemoryScope,
        records: Sequence[MemoryRecord],
        session_id: str | None,
        replace: bool,
    ) -> int:
        t = self.tables
        ids = [r.memory_id for r in records]
        lock_sql, lock_args = _lock_user(t, scope)
        read = Batch().add("START TRANSACTION").add(lock_sql, lock_args)
        read.add("SELECT LAST_INSERT_ID()", name="user")
        where = f"memory_id IN ({_marks(len(ids))})" if ids else "FALSE"
        args: list[Any] = list(ids)
        if replace:
            where += " OR session_id = %s" if session_id is not None else " OR session_id IS NULL"
            args += [session_id] if session_id is not None else []
        read.add(
            f"SELECT memory_id, pk, session_id, digest FROM {t.memories} "
            f"WHERE user_pk = LAST_INSERT_ID() AND ({where})",
            args,
            name="stored",
        )
        if ids:
            read.add(
                f"SELECT memory_id FROM {t.memory_tombstones} "
                f"WHERE user_pk = LAST_INSERT_ID() AND memory_id IN ({_marks(len(ids))})",
                ids,
                name="deleted",
            )
        try:
            results = await self.db._execute(conn, read)
            user_pk = int(read.pick(results, "user").rows[0][0])
            stored = {
                _text(mid): _Stored(int(pk), _opt_text(sid), bytes(digest))
                for mid, pk, sid, digest in read.pick(results, "stored").rows or ()
            }
            deleted = (
                {_text(row[0]) for row in read.pick(results, "deleted").rows or ()} if ids else set()
            )
            writes, written = self._writes(user_pk, records, stored, deleted, session_id, replace)
            writes[-1].add("COMMIT")
            for batch in writes:  # a long session: a few statements of bounded size
                await self.db._execute(conn, batch)
        except BaseException:
            await _rollback(self.db, conn)
            raise
        return written

    def _writes(
        self,
        user_pk: int,
        records: Sequence[MemoryRecord],
        stored: dict[str, _Stored],
        deleted: set[str],
        session_id: str | None,
        replace: bool,
    ) -> tuple[list[Batch], int]:
        t = self.tables
        batch = Batch()
        batches = [batch]
        removed: list[int] = []
        added: list[MemoryRecord] = []
        owners: list[int] = []
        for record in records:
            if record.memory_id in deleted:
                continue
            old = stored.get(record.memory_id)
            if old is None:
                added.append(record)
            elif not replace:
                continue
            elif old.digest != bytes.fromhex(record.digest):
                removed.append(old.pk)
                added.append(record)
            elif old.session_id != session_id:
                owners.append(old.pk)
        if replace:
            keep = {r.memory_id for r in records}
            removed += [s.pk for mid, s in stored.items() if s.session_id == session_id and mid not in keep]
        if removed:
            self._remove(batch, user_pk, removed)
        if owners:
            batch.add(
                f"UPDATE {t.memories} SET session_id = %s WHERE pk IN ({_marks(len(owners))})",
                [session_id, *owners],
            )
        counts: Counter[str] = Counter()
        now = time.time()
        for n, record in enumerate(added):
            if n and n % ADD_CHUNK == 0:
                batch = Batch()
                batches.append(batch)
            batch.add(
                f"INSERT INTO {t.memories} (user_pk, memory_id, session_id, timestamp, author, text, "
                "payload, digest, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    user_pk,
                    record.memory_id,
                    session_id,
                    record.timestamp,
                    record.author,
                    record.text,
                    record.payload,
                    bytes.fromhex(record.digest),
                    now,
                ],
            )
            extras = b"".join(b"\x00" + e.encode() for e in record.extras)
            batch.add(
                f"INSERT INTO {t.memory_index} (memory_pk, terms, text_lower, extras) "
                "VALUES (LAST_INSERT_ID(), %s, %s, %s)",
                [_term_list(record.terms), (record.text_lower or "").encode(), extras + b"\x00" if extras else b""],
            )
            rows = ", ".join(["(LAST_INSERT_ID(), %s, %s, %s)"] * len(record.terms))
            args: list[Any] = []
            for term in record.terms:
                args += [term.encode(), user_pk, record.timestamp]
            batch.add(
                f"INSERT INTO {t.memory_terms} (memory_pk, term, user_pk, timestamp) VALUES {rows}",
                args,
            )
            counts.update(record.terms)
        if counts:
            ordered = sorted(counts)  # one lock order for every writer
            batch.add(
                f"INSERT INTO {t.memory_term_counts} (user_pk, term, n) VALUES "
                + ", ".join(["(%s, %s, %s)"] * len(ordered))
                + " ON DUPLICATE KEY UPDATE n = n + VALUES(n)",
                [v for term in ordered for v in (user_pk, term.encode(), counts[term])],
            )
        return batches, len(added) + len(owners)

    def _remove(self, batch: Batch, user_pk: int, pks: list[int]) -> None:
        """Statements removing entries `pks` of one user, their terms and their counts."""
        t = self.tables
        marks = _marks(len(pks))
        batch.add(
            f"UPDATE {t.memory_term_counts} c JOIN (SELECT term, COUNT(*) AS n FROM {t.memory_terms} "
            f"WHERE memory_pk IN ({marks}) GROUP BY term) d ON c.user_pk = %s AND c.term = d.term "
            "SET c.n = c.n - d.n",
            [*pks, user_pk],
        )
        batch.add(f"DELETE FROM {t.memory_terms} WHERE memory_pk IN ({marks})", pks)
        batch.add(f"DELETE FROM {t.memory_index} WHERE memory_pk IN ({marks})", pks)
        batch.add(f"DELETE FROM {t.memories} WHERE pk IN ({marks})", pks)
        batch.add(f"DELETE FROM {t.memory_term_counts} WHERE user_pk = %s AND n <= 0", [user_pk])

    # -- delete -------------------------------------------------------------------------

    async def delete(self, scope: MemoryScope, memory_id: str) -> bool:
        t = self.tables
        lock_sql, lock_args = _lock_user(t, scope)
        batch = Batch().add("START TRANSACTION").add(lock_sql, lock_args)
        batch.add("SET @ifriend_user = LAST_INSERT_ID()")
        batch.add(
            f"SET @ifriend_memory = (SELECT pk FROM {t.memories} "
            "WHERE user_pk = @ifriend_user AND memory_id = %s)",
            [memory_id],
        )
        batch.add(
            f"UPDATE {t.memory_term_counts} c JOIN (SELECT term, COUNT(*) AS n FROM {t.memory_terms} "
            "WHERE memory_pk = @ifriend_memory GROUP BY term) d "
            "ON c.user_pk = @ifriend_user AND c.term = d.term SET c.n = c.n - d.n"
        )
        batch.add(f"DELETE FROM {t.memory_terms} WHERE memory_pk = @ifriend_memory")
        batch.add(f"DELETE FROM {t.memory_index} WHERE memory_pk = @ifriend_memory")
        batch.add(f"DELETE FROM {t.memories} WHERE pk = @ifriend_memory")
        batch.add(
            f"DELETE FROM {t.memory_term_counts} WHERE user_pk = @ifriend_user AND n <= 0"
        )
        batch.add(
            f"INSERT INTO {t.memory_tombstones} (user_pk, memory_id, deleted_at) "
            "SELECT @ifriend_user, %s, %s FROM DUAL WHERE @ifriend_memory IS NOT NULL "
            "ON DUPLICATE KEY UPDATE deleted_at = VALUES(deleted_at)",
            [memory_id, time.time()],
        )
        batch.add("SELECT @ifriend_memory IS NOT NULL", name="found")
        batch.add("COMMIT")

        async def work(conn: Any) -> bool:
            try:
                results = await self.db._execute(conn, batch)
            except BaseException:
                await _rollback(self.db, conn)
                raise
            return bool(batch.pick(results, "found").rows[0][0])

        return await self.db._run("memory_delete", work)

    # -- search -------------------------------------------------------------------------

    async def search(
        self, scope: MemoryScope, terms: Sequence[QueryTerm], limit: int
    ) -> list[MemoryHit]:
        return await self.db._run(
            "memory_search", lambda conn: memory_search.search(self.db, conn, scope, terms, limit)
        )


async def _rollback(db: MySQLStore, conn: Any) -> None:
    """Roll back on a connection still usable; the pool drops a broken one anyway."""
    try:
        await db._execute(conn, Batch().add("ROLLBACK"))
    except Exception:
        pass


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else value


def _opt_text(value: bytes | str | None) -> str | None:
    return None if value is None else _text(value)


__all__ = ["MySQLMemoryStore"]
