"""MySQL memory search: the best few entries of one user, in one consistent snapshot.

A query whose terms have at most `ONE_QUERY_POSTINGS` postings together is one statement:
every candidate scored (`memory_index`: LOCATE of each term, or of each non-ASCII word in
the lowercased text), ordered and cut by the server. A bigger one runs
`ifriend.memory.ranking.best` over `memory_terms`, one SELECT per chunk of postings.
Round trips: the term counts (with the snapshot's start), then one or more, the last
reading the entries found and committing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ifriend.plugin_api import MemoryHit, MemoryScope, Postings, QueryTerm, Scanned, best

from .statements import SNAPSHOT, Batch
from .store import MySQLStore

ONE_QUERY_POSTINGS = 1500

_HOLDS_TERM = "(LOCATE(%s, x.terms) > 0)"
"""1 when the entry has an index term (arg: LF + term + LF)."""
_HOLDS_WORD = "(LOCATE(%s, x.text_lower) > 0 OR LOCATE(%s, x.extras) > 0)"
"""1 when the entry matches a non-ASCII query word (args: the word, then NUL + word + NUL)."""


def _marks(n: int) -> str:
    return ", ".join(["%s"] * n)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else value


async def search(
    db: MySQLStore, conn: Any, scope: MemoryScope, terms: Sequence[QueryTerm], limit: int
) -> list[MemoryHit]:
    """The best `limit` entries of `scope` for `terms`, in one snapshot on `conn`."""
    t = db.tables
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
    results = await db._execute(conn, start)
    hits: list[MemoryHit] = []
    user_rows = start.pick(results, "user").rows
    if user_rows:
        counts = {_text(term): int(n) for term, n in start.pick(results, "counts").rows or ()}
        postings = _SqlPostings(db, conn, int(user_rows[0][0]), terms, counts)
        if sum(postings.sizes) <= ONE_QUERY_POSTINGS:
            return await postings.all_at_once(limit)
        ranked = await best(postings, postings.sizes, limit)
        hits = await _hits(db, conn, {r.ref: r.score for r in ranked})
    else:
        # On failure the pool closes the connection, and the snapshot with it.
        await db._execute(conn, Batch().add("COMMIT"))
    return hits


async def _hits(db: MySQLStore, conn: Any, scores: dict[Any, int]) -> list[MemoryHit]:
    """The entries found, read in the search's snapshot, which this ends."""
    batch = Batch()
    if scores:
        batch.add(
            f"SELECT pk, memory_id, timestamp, payload FROM {db.tables.memories} "
            f"WHERE pk IN ({_marks(len(scores))})",
            list(scores),
            name="hits",
        )
    batch.add("COMMIT")
    results = await db._execute(conn, batch)
    rows = batch.pick(results, "hits").rows or () if scores else ()
    return [
        MemoryHit(_text(mid), scores[int(pk)], float(ts), bytes(payload))
        for pk, mid, ts, payload in rows
    ]


class _SqlPostings(Postings):
    """`Postings` over `memory_terms`: one SELECT per chunk, newest first."""

    def __init__(
        self,
        db: MySQLStore,
        conn: Any,
        user_pk: int,
        terms: Sequence[QueryTerm],
        counts: dict[str, int],
    ) -> None:
        self.db, self.conn, self.user_pk, self.terms = db, conn, user_pk, terms
        # A term's postings are bounded by its rarest key's; that key drives its scan.
        self.drivers = [min(term.keys, key=lambda k: (counts.get(k, 0), k)) for term in terms]
        self.sizes = [counts.get(k, 0) for k in self.drivers]

    async def scan(
        self, term: int, later: Sequence[int], cursor: Any, limit: int
    ) -> tuple[list[Scanned], Any]:
        t = self.db.tables
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
        rows = (await self.db._execute(self.conn, batch))[0].rows or ()
        found = [Scanned(int(pk), float(ts), int(n)) for pk, ts, n in rows]
        if len(found) < limit:
            return found, None
        return found, (found[-1].timestamp, found[-1].ref)

    async def all_at_once(self, limit: int) -> list[MemoryHit]:
        """The best `limit` in one statement that scores every posting of every term (for
        queries with few postings), ending the snapshot."""
        t = self.db.tables
        present = [i for i, size in enumerate(self.sizes) if size > 0]
        if not present:
            await self.db._execute(self.conn, Batch().add("COMMIT"))
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
        rows = batch.pick(await self.db._execute(self.conn, batch), "hits").rows or ()
        return [MemoryHit(_text(mid), int(n), float(ts), bytes(payload)) for mid, n, ts, payload in rows]


def _match_args(term: QueryTerm) -> list[bytes]:
    if term.exact:
        return [b"\n" + term.keys[0].encode() + b"\n"]
    word = term.word.encode()
    return [word, b"\x00" + word + b"\x00"]
