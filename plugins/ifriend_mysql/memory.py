"""`MySQLMemoryStore`: long-term memory in MySQL/MariaDB, durable, no TTL.

Tables (schema version 2, README "Long-term memory"): `memory_users` (one row per app and
user), `memories` (one row per entry, its text FULLTEXT-indexed for reports),
`memory_terms` (the word index: one row per entry and term, keyed for a scan of one
term's postings newest first), `memory_index` (per entry, what a search checks: its
terms, its lowercased text), `memory_term_counts` (postings per term, to read the
rarest first) and `memory_tombstones` (deleted ids, never stored again).

Round trips: add 2 (lock the user's row and read what is stored; write and commit),
delete 1, search 2 plus one per chunk of postings read (`ifriend.memory.ranking`),
in one consistent snapshot. The pool, deadlines and error mapping are the
session store's (`MySQLStore`): the memory store owns one, with the same settings.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ifriend.memory.ranking import Postings, Scanned, best
from ifriend.memory.store import MemoryHit, MemoryRecord, MemoryScope
from ifriend.memory.text import QueryTerm

from .schema import Tables
from .settings import MySQLSettings
from .statements import SNAPSHOT, Batch
from .store import MySQLStore


ADD_CHUNK = 200  # entries per statement batch of an add
ONE_QUERY_POSTINGS = 1500  # a search with at most this many postings is one statement


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


_HOLDS_TERM = "(LOCATE(%s, x.terms) > 0)"
"""1 when the entry has an index term (arg: LF + term + LF)."""
_HOLDS_WORD = "(LOCATE(%s, x.text_lower) > 0 OR LOCATE(%s, x.extras) > 0)"
"""1 when the entry matches a non-ASCII query word (args: the word, then NUL + word + NUL)."""


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
        return await self.db._run("memory_search", lambda conn: self._search(conn, scope, terms, limit))

    async def _search(
        self, conn: Any, scope: MemoryScope, terms: Sequence[QueryTerm], limit: int
    ) -> list[MemoryHit]:
        t = self.tables
        keys = sorted({key for term in terms for key in term.keys})
        start = Batch()
        for statement in SNAPSHOT:
            start.add(statement)
        start.add(
            f"SELECT pk FROM {t.memory_users} WHERE app_name = %s AND user_id = %s",
            [scope.app_name, scope.user_id],
            name="user",
        )
        start.add(
            f"SELECT c.term, c.n FROM {t.memory_term_counts} c JOIN {t.memory_users} u "
            f"ON u.pk = c.user_pk WHERE u.app_name = %s AND u.user_id = %s AND c.term IN ({_marks(len(keys))})",
            [scope.app_name, scope.user_id, *(k.encode() for k in keys)],
            name="counts",
        )
        results = await self.db._execute(conn, start)
        hits: list[MemoryHit] = []
        user_rows = start.pick(results, "user").rows
        if user_rows:
            counts = {_text(term): int(n) for term, n in start.pick(results, "counts").rows or ()}
            postings = _SqlPostings(self, conn, int(user_rows[0][0]), terms, counts)
            if sum(postings.sizes) <= ONE_QUERY_POSTINGS:
                return await postings.all_at_once(limit)
            ranked = await best(postings, postings.sizes, limit)
            hits = await self._hits(conn, {r.ref: r.score for r in ranked})
        else:
            # On failure the pool closes the connection, and the snapshot with it.
            await self.db._execute(conn, Batch().add("COMMIT"))
        return hits

    async def _hits(self, conn: Any, scores: dict[Any, int]) -> list[MemoryHit]:
        """The entries found, read in the search's snapshot, which this ends."""
        batch = Batch()
        if scores:
            batch.add(
                f"SELECT pk, memory_id, timestamp, payload FROM {self.tables.memories} "
                f"WHERE pk IN ({_marks(len(scores))})",
                list(scores),
                name="hits",
            )
        batch.add("COMMIT")
        results = await self.db._execute(conn, batch)
        rows = batch.pick(results, "hits").rows or () if scores else ()
        return [
            MemoryHit(_text(mid), scores[int(pk)], float(ts), bytes(payload))
            for pk, mid, ts, payload in rows
        ]


class _SqlPostings(Postings):
    """`Postings` over `memory_terms`: one SELECT per chunk, newest first."""

    def __init__(
        self,
        store: MySQLMemoryStore,
        conn: Any,
        user_pk: int,
        terms: Sequence[QueryTerm],
        counts: dict[str, int],
    ) -> None:
        self.store, self.conn, self.user_pk, self.terms = store, conn, user_pk, terms
        # A term's postings are bounded by its rarest key's; that key drives its scan.
        self.drivers = [min(term.keys, key=lambda k: (counts.get(k, 0), k)) for term in terms]
        self.sizes = [counts.get(k, 0) for k in self.drivers]

    async def scan(
        self, term: int, later: Sequence[int], cursor: Any, limit: int
    ) -> tuple[list[Scanned], Any]:
        t = self.store.tables
        scanned = self.terms[term]
        parts, args = ["0"], []
        for i in later:
            parts.append(_HOLDS_TERM if self.terms[i].exact else _HOLDS_WORD)
            args += _match_args(self.terms[i])
        where = ["p.user_pk = %s", "p.term = %s"]
        args += [self.user_pk, self.drivers[term].encode()]
        if not scanned.exact:
            where.append(_HOLDS_WORD)
            args += _match_args(scanned)
        if cursor is not None:
            where.append("(p.timestamp < %s OR (p.timestamp = %s AND p.memory_pk < %s))")
            args += [cursor[0], cursor[0], cursor[1]]
        joined = bool(later) or not scanned.exact
        join = f" JOIN {t.memory_index} x ON x.memory_pk = p.memory_pk" if joined else ""
        batch = Batch().add(
            f"SELECT p.memory_pk, p.timestamp, {' + '.join(parts)} FROM {t.memory_terms} p{join} "
            f"WHERE {' AND '.join(where)} ORDER BY p.timestamp DESC, p.memory_pk DESC LIMIT %s",
            [*args, limit],
        )
        rows = (await self.store.db._execute(self.conn, batch))[0].rows or ()
        found = [Scanned(int(pk), float(ts), int(n)) for pk, ts, n in rows]
        if len(found) < limit:
            return found, None
        return found, (found[-1].timestamp, found[-1].ref)


    async def all_at_once(self, limit: int) -> list[MemoryHit]:
        """The best `limit` in one statement that scores every posting of every term (for
        queries with few postings), ending the snapshot."""
        t = self.store.tables
        present = [i for i, size in enumerate(self.sizes) if size > 0]
        if not present:
            await self.store.db._execute(self.conn, Batch().add("COMMIT"))
            return []
        parts, args = [], []
        for i in present:
            parts.append(_HOLDS_TERM if self.terms[i].exact else _HOLDS_WORD)
            args += _match_args(self.terms[i])
        score = " + ".join(parts)
        drivers = [self.drivers[i].encode() for i in present]
        batch = Batch().add(
            f"SELECT m.memory_id, {score} AS score, m.timestamp, m.payload "
            f"FROM {t.memory_index} x JOIN {t.memories} m ON m.pk = x.memory_pk "
            f"WHERE x.memory_pk IN (SELECT memory_pk FROM {t.memory_terms} "
            f"WHERE user_pk = %s AND term IN ({_marks(len(drivers))})) "
            f"HAVING score > 0 ORDER BY score DESC, m.timestamp DESC, m.memory_id DESC LIMIT %s",
            [*args, self.user_pk, *drivers, limit],
            name="hits",
        ).add("COMMIT")
        rows = batch.pick(await self.store.db._execute(self.conn, batch), "hits").rows or ()
        return [MemoryHit(_text(mid), int(n), float(ts), bytes(payload)) for mid, n, ts, payload in rows]


def _match_args(term: QueryTerm) -> list[bytes]:
    if term.exact:
        return [b"\n" + term.keys[0].encode() + b"\n"]
    word = term.word.encode()
    return [word, b"\x00" + word + b"\x00"]


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
