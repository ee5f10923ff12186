"""`RedisMemoryStore`: long-term memory in Redis, each entry living `memory_ttl_days`.

Per (app, user), under one hash tag: the entries (payload, index record, lowercased text),
their expiry times, the deleted ids, each session's entries, and one sorted set of
postings per term (score: the entry's timestamp). A search reads only the postings of
the query's terms, never the keyspace (no KEYS, no SCAN), in one script running
`ifriend.memory.ranking`'s level-wise top-k server side. Every call is one round trip.

Expiry: an entry expires `memory_ttl_days` after it was last added; expired entries are
skipped by searches and removed by the next add (a hundred at a time); every key of the
user expires with the user's last entry, so an idle user's memory leaves nothing behind.
The store shares the process's connections to that Redis (or cluster) with the session
store and the Slack dedupe (`shared`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import quote

from ifriend.plugin_api import MemoryHit, MemoryRecord, MemoryScope, QueryTerm

from .client import RedisClient, script_sha
from .memory_scripts import SCRIPTS
from .settings import RedisSettings

DAY_MS = 86_400_000
ADD_CHUNK = 200  # records per add script


def _q(value: str) -> str:
    return quote(value, safe="")


class MemoryKeys:
    """The keys of one user's memory: `P:{m|<app>|<user>}:<suffix>` (ids percent-encoded)."""

    def __init__(self, prefix: str, scope: MemoryScope) -> None:
        self.tag = tag = f"{prefix}:{{m|{_q(scope.app_name)}|{_q(scope.user_id)}}}:"
        self.entries, self.index, self.texts = tag + "e", tag + "i", tag + "v"
        self.extras, self.expiry, self.deleted = tag + "w", tag + "x", tag + "d"

    def session(self, session_id: str | None) -> str:
        return self.tag + "s:" + (_q(session_id) if session_id is not None else "")

    def term(self, term: str) -> str:
        return self.tag + "t:" + term

    def entry_keys(self) -> list[str]:
        """E, I, V, W, X, D: the order the add and delete scripts take them in."""
        return [self.entries, self.index, self.texts, self.extras, self.expiry, self.deleted]


class RedisMemoryStore:
    """A `MemoryStore` on one Redis (or Redis Cluster: every key of a user in one slot)."""

    name = "redis"

    def __init__(self, settings: RedisSettings | None = None, *, ttl_ms: int | None = None) -> None:
        self.settings = settings or RedisSettings()
        self.ttl_ms = ttl_ms if ttl_ms is not None else self.settings.memory_ttl_days * DAY_MS
        self.client = RedisClient(self.settings)
        for name, text in SCRIPTS.items():
            self.client.scripts[name] = text
            self.client.shas[name] = script_sha(text)

    def keys(self, scope: MemoryScope) -> MemoryKeys:
        return MemoryKeys(self.settings.key_prefix, scope)

    async def connect(self) -> None:
        """Check the topology, load the scripts (one round trip); `BackendUnavailableError`
        if Redis is unreachable, `TopologyError` if `cluster` is set wrong."""
        async with self.client.bounded("memory_connect"):
            await self.client.connect()

    async def close(self) -> None:
        await self.client.close()

    async def ping(self) -> None:
        async with self.client.bounded("memory_ping"):
            await self.client.execute([("PING",)])

    async def add(
        self,
        scope: MemoryScope,
        records: Sequence[MemoryRecord],
        *,
        session_id: str | None,
        replace: bool,
    ) -> int:
        """One script per `ADD_CHUNK` records, pipelined in one round trip: a long session
        never holds Redis for long. A replace removes the session's other entries last."""
        if not records and not replace:
            return 0
        k = self.keys(scope)
        keys = [*k.entry_keys(), k.session(session_id)]
        owner = _q(session_id) if session_id is not None else ""
        now = int(time.time() * 1000)
        chunks = [records[i : i + ADD_CHUNK] for i in range(0, len(records), ADD_CHUNK)] or [[]]
        ops = []
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            args: list[str | bytes | int] = [k.tag, now, self.ttl_ms, int(replace), owner, int(last), len(chunk)]
            for r in chunk:
                tail = "\n".join((repr(r.timestamp), owner, r.digest, *r.terms)) + "\n"
                extras = "".join(f"\0{e}" for e in r.extras) + "\0" if r.extras else ""
                args += [r.memory_id, r.payload, tail, r.text_lower or "", extras]
            if last and replace:
                args += [r.memory_id for r in records[: len(records) - len(chunk)]]
            ops.append(self.client.evalsha("memory_add", keys, args))
        async with self.client.bounded("memory_add", **{"ifriend.entries": len(records)}):
            written = await self.client.execute(ops)
        return sum(int(w) for w in written)

    async def search(
        self, scope: MemoryScope, terms: Sequence[QueryTerm], limit: int
    ) -> list[MemoryHit]:
        k = self.keys(scope)
        keys = [k.entries, k.index, k.texts, k.extras]
        args: list[str | int] = [int(time.time() * 1000), limit, len(terms)]
        for term in terms:
            args += ["", len(term.keys), term.keys[0]] if term.exact else [term.word, len(term.keys)]
            keys += [k.term(key) for key in term.keys]
        async with self.client.bounded("memory_search") as span:
            (flat,) = await self.client.execute([self.client.evalsha("memory_search", keys, args)])
            span.set_attribute("ifriend.results", len(flat) // 4)
        return [
            MemoryHit(_text(flat[j]), int(flat[j + 1]), float(flat[j + 2]), bytes(flat[j + 3]))
            for j in range(0, len(flat), 4)
        ]

    async def delete(self, scope: MemoryScope, memory_id: str) -> bool:
        k = self.keys(scope)
        args = [k.tag, int(time.time() * 1000), self.ttl_ms, memory_id]
        async with self.client.bounded("memory_delete"):
            (found,) = await self.client.execute(
                [self.client.evalsha("memory_delete", k.entry_keys(), args)]
            )
        return bool(found)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else value
