"""Redis Cluster: the lean exchange routed by hash slot, redirects followed, topology kept.

Each op goes to the master serving the slot of its first key (EVAL/EVALSHA: the first
key after numkeys; other commands: the first argument after the name). An op without a
key (`WAIT`, `PING`) goes with the op before it, in the same send on the same
connection, so `[EVALSHA ..., ("WAIT", 1, 50)]` waits for that very write. Ops for
different masters go out concurrently, one pipelined send per master; the replies come
back in the caller's order.

MOVED: the slot map is read again (CLUSTER SLOTS, from any known node) and the ops
resent; ASK: resent to the named node after ASKING; TRYAGAIN / CLUSTERDOWN: resent
after a short pause, for at most half the call's timeout, then the error is the reply.
A node that cannot be reached also makes the map be read again: after a failover the
promoted replica serves the slots. Every op the stores send is idempotent, so resending
one whose reply was lost is safe.
"""

from __future__ import annotations

import asyncio
import time
from binascii import crc_hqx
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ifriend.plugin_api import TopologyError

from .connections import Node, Op, errors, exchange_each, node_url
from .settings import RedisSettings

SLOTS = 16384
MAX_ROUNDS = 8  # sends of one exchange, redirects and retries included

# Commands whose first argument is not a key: they go with the op before them.
KEYLESS = frozenset({
    "ASKING", "CLIENT", "CLUSTER", "CONFIG", "DBSIZE", "DEBUG", "ECHO", "FUNCTION", "HELLO",
    "INFO", "LASTSAVE", "MEMORY", "PING", "READONLY", "ROLE", "SCRIPT", "TIME", "WAIT", "WAITAOF",
})
_SCRIPTS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})


_FIRST_ARGUMENT, _KEYLESS, _SCRIPT = 1, 0, 3
_rules: dict[Any, int] = {}  # command name as sent -> where its first key is


def key_of(op: Op) -> Any:
    """The op's first key, or None for a command without keys."""
    rule = _rules.get(op[0])
    if rule is None:
        name = op[0]
        name = (name.decode() if isinstance(name, bytes) else str(name)).upper()
        rule = _rules[op[0]] = (
            _SCRIPT if name in _SCRIPTS else _KEYLESS if name in KEYLESS else _FIRST_ARGUMENT
        )
    if rule == _FIRST_ARGUMENT:
        return op[1] if len(op) > 1 else None
    if rule == _SCRIPT:
        return op[3] if int(op[2]) > 0 else None
    return None


def key_slot(key: str | bytes) -> int:
    """The cluster hash slot of `key` (CRC16 of its hash tag, if it has one)."""
    data = key.encode() if isinstance(key, str) else key
    start = data.find(b"{")
    if start > -1:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1 : end]
    return crc_hqx(data, 0) % SLOTS


def topology_error(address: str, *, is_cluster: bool) -> TopologyError:
    """The server at `address` is a cluster node (`is_cluster`) or a standalone one,
    and the settings say the opposite."""
    if is_cluster:
        return TopologyError(
            f"the Redis at {address} is a Redis Cluster node, but cluster is not enabled",
            key="backends.redis.cluster",
            value=False,
            expected="cluster = true for a Redis Cluster (IFRIEND__BACKENDS__REDIS__CLUSTER=true), "
            "or a url naming a standalone Redis",
        )
    return TopologyError(
        f"the Redis at {address} has cluster support disabled (a standalone server), "
        "but cluster = true",
        key="backends.redis.cluster",
        value=True,
        expected="cluster = false for a standalone Redis (IFRIEND__BACKENDS__REDIS__CLUSTER=false), "
        "or a url naming a node of a Redis Cluster",
    )


class Cluster:
    """The masters of one Redis Cluster, found from the node `settings.url` names.

    Same interface as `Node`: `exchange`, `broadcast`, `close`. Each node has its own
    connections (at most `max_connections`; callers beyond wait, up to their deadline).
    """

    def __init__(self, settings: RedisSettings) -> None:
        self.settings = settings
        parts = urlsplit(settings.url)
        self._seed = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._nodes: dict[tuple[str, int], Node] = {}
        self._slots: list[Node | None] = []  # slot -> master; empty until first read
        self._masters: list[Node] = []
        self._replicas: list[Node] = []
        self._generation = 0  # bumped by every read of the slot map
        self._reading: asyncio.Task[None] | None = None

    @property
    def masters(self) -> list[Node]:
        return list(self._masters)

    def node(self, host: str, port: int) -> Node:
        """The node at host:port (made on first use; no I/O)."""
        found = self._nodes.get((host, port))
        if found is None:
            url = node_url(self.settings.url, host, port)
            found = self._nodes[(host, port)] = Node(self.settings, url)
        return found

    def node_for(self, key: str | bytes) -> Node | None:
        """The master serving `key`'s slot, as last read (None before the first read)."""
        return self._slots[key_slot(key)] if self._slots else None

    # -- the exchange --------------------------------------------------------------------

    async def exchange(self, ops: Sequence[Op]) -> list[Any]:
        """Every op sent to its slot's master, replies in `ops` order (error replies as values).

        Raises the connection error of a node that cannot be reached when the slot map,
        read again, still names it.
        """
        if not self._slots:
            await self.refresh(self._generation)
        if len(ops) == 1:  # the common case, without the bookkeeping below
            try:
                replies = await self._target(ops[0]).exchange(ops)
            except Exception as exc:
                if not _unreachable(exc):
                    raise
            else:
                if not _redirected(replies[0]):
                    return replies
        units = _units(ops)
        replies: list[Any] = [None] * len(ops)
        pending = list(units)  # heads of the units to send
        asking: dict[int, Node] = {}  # unit head -> the node an ASK named
        busy_until: float | None = None
        delay = 0.005
        unreachable: dict[Node, BaseException] = {}
        for _ in range(MAX_ROUNDS):
            generation = self._generation
            groups = self._route(ops, pending, units, asking)
            results = await self._send(groups)
            asking, unreachable = {}, {}
            retry: list[int] = []
            moved: list[tuple[Node, Any]] = []
            busy = False
            e = errors()
            for (node, (_, positions)), result in zip(groups.items(), results, strict=True):
                if isinstance(result, BaseException):
                    if not _unreachable(result):
                        raise result
                    unreachable[node] = result
                    retry += [p for p in positions if p is not None and p in units]
                    continue
                for position, reply in zip(positions, result, strict=True):
                    if position is None:  # the reply to ASKING
                        continue
                    replies[position] = reply
                    if not isinstance(reply, Exception) or position not in units:
                        continue
                    if isinstance(reply, e.MovedError):  # before AskError, its base class
                        moved.append((node, reply))
                    elif isinstance(reply, e.AskError):
                        asking[position] = self.node(reply.host, reply.port)
                    elif isinstance(reply, e.TryAgainError | e.ClusterDownError):
                        busy = True
                    else:
                        continue
                    retry.append(position)
            if not retry:
                return replies
            if moved or unreachable:
                try:
                    await self.refresh(generation)
                except Exception:
                    if unreachable:
                        raise next(iter(unreachable.values())) from None
                    raise
                for node, reply in moved:
                    if self._slots[reply.slot_id] is node:  # the map read is older than MOVED
                        self._slots[reply.slot_id] = self.node(reply.host, reply.port)
                for head in retry:
                    if self._target(ops[head]) in unreachable:  # still the map's master
                        raise unreachable[self._target(ops[head])]  # type: ignore[index]
            if busy:
                now = time.monotonic()
                if busy_until is None:
                    busy_until = now + self.settings.timeout_seconds / 2
                if now >= busy_until:
                    return replies  # the TRYAGAIN / CLUSTERDOWN replies
                await asyncio.sleep(min(delay, busy_until - now))
                delay *= 2
            pending = sorted(retry)
        if unreachable:  # some ops were never answered
            raise next(iter(unreachable.values()))
        return replies

    def _target(self, op: Op) -> Node:
        key = key_of(op)
        return (self._slots[key_slot(key)] if key is not None else None) or self._masters[0]

    def _route(
        self, ops: Sequence[Op], heads: list[int], units: dict[int, list[int]], asking: dict[int, Node]
    ) -> dict[Node, tuple[list[Op], list[int | None]]]:
        """Per node: the ops to send and, for each, its position in `ops` (None: ASKING)."""
        groups: dict[Node, tuple[list[Op], list[int | None]]] = {}
        for head in heads:
            target = asking.get(head) or self._target(ops[head])
            group = groups.get(target)
            if group is None:
                group = groups[target] = ([], [])
            if head in asking:
                group[0].append(("ASKING",))
                group[1].append(None)
            for i in units[head]:
                group[0].append(ops[i])
                group[1].append(i)
        return groups

    async def _send(self, groups: dict[Node, tuple[list[Op], list[int | None]]]) -> list[Any]:
        """Each group's replies, or the exception its exchange raised."""
        if len(groups) == 1:
            ((node, (ops, _)),) = groups.items()
            try:
                return [await node.exchange(ops)]
            except Exception as exc:
                return [exc]
        return await exchange_each([(node, ops) for node, (ops, _) in groups.items()])

    async def broadcast(self, ops: Sequence[Op]) -> list[list[Any]]:
        """`ops` sent to every master (script loads): one list of replies per master."""
        for attempt in range(2):
            generation = self._generation
            if not self._slots:
                await self.refresh(generation)
            results = await asyncio.gather(
                *(node.exchange(ops) for node in self._masters), return_exceptions=True
            )
            failed = [r for r in results if isinstance(r, BaseException)]
            if not failed:
                return results  # type: ignore[return-value]
            if attempt or not all(_unreachable(r) for r in failed):
                raise failed[0]
            await self.refresh(generation)
        raise AssertionError("unreachable")

    # -- the slot map -------------------------------------------------------------------

    async def refresh(self, seen: int) -> None:
        """Read the slot map again, unless it was read since generation `seen`.

        Callers share one read in flight; it is bounded by the settings' timeout.
        """
        if self._generation != seen:
            return
        task = self._reading
        if task is None:
            task = self._reading = asyncio.get_running_loop().create_task(self._read())
            task.add_done_callback(self._read_done)
        await asyncio.shield(task)

    def _read_done(self, task: asyncio.Task[None]) -> None:
        if self._reading is task:
            self._reading = None
        if not task.cancelled():
            task.exception()  # retrieved: the callers awaiting it got it

    async def _read(self) -> None:
        timeout = self.settings.timeout_seconds
        last: BaseException | None = None
        async with asyncio.timeout(timeout):
            for node in self._candidates():
                try:
                    async with asyncio.timeout(timeout / 3):
                        (reply,) = await node.exchange([("CLUSTER", "SLOTS")])
                except (TimeoutError, errors().ConnectionError, OSError) as exc:
                    last = exc
                    continue
                if isinstance(reply, Exception):
                    if "cluster support disabled" in str(reply):
                        raise topology_error(node.address, is_cluster=False)
                    last = reply
                    continue
                self._apply(reply, node)
                return
        detail = f" (last: {type(last).__name__}: {last})" if last is not None else ""
        raise errors().ConnectionError(f"no node of the Redis Cluster answered CLUSTER SLOTS{detail}")

    def _candidates(self) -> list[Node]:
        """Known masters, then replicas, then the node the url names."""
        seen: dict[Node, None] = dict.fromkeys([*self._masters, *self._replicas])
        seen.setdefault(self.node(*self._seed))
        return list(seen)

    def _apply(self, reply: list[Any], asked: Node) -> None:
        asked_host = asked.address.rpartition(":")[0]
        slots: list[Node | None] = [None] * SLOTS
        masters: dict[Node, None] = {}
        replicas: dict[Node, None] = {}
        for start, end, master, *others in reply:
            node = self.node(*_address(master, asked_host))
            slots[int(start) : int(end) + 1] = [node] * (int(end) - int(start) + 1)
            masters[node] = None
            for other in others:
                replicas[self.node(*_address(other, asked_host))] = None
        if not masters:
            raise errors().ClusterDownError("the Redis Cluster serves no slot")
        self._slots = slots
        self._masters = list(masters)
        self._replicas = [n for n in replicas if n not in masters]
        self._generation += 1

    async def close(self) -> None:
        """Close every node's connections (callers still waiting get an error)."""
        reading, self._reading = self._reading, None
        if reading is not None:
            reading.cancel()
        nodes, self._nodes = list(self._nodes.values()), {}
        self._slots, self._masters, self._replicas = [], [], []
        for node in nodes:
            await node.close()


def _units(ops: Sequence[Op]) -> dict[int, list[int]]:
    """Each keyed op (and a leading keyless one) with the keyless ops that follow it."""
    units: dict[int, list[int]] = {}
    head = -1
    for i, op in enumerate(ops):
        if head < 0 or key_of(op) is not None:
            head = i
            units[head] = [i]
        else:
            units[head].append(i)
    return units


def _redirected(reply: object) -> bool:
    """MOVED, ASK, TRYAGAIN or CLUSTERDOWN: the op was not applied; send it again."""
    if not isinstance(reply, Exception):
        return False
    e = errors()
    return isinstance(reply, e.AskError | e.TryAgainError | e.ClusterDownError)


def _unreachable(exc: BaseException) -> bool:
    """A connection that failed or timed out (refused, reset, no answer): the node may be gone."""
    e = errors()
    return isinstance(exc, e.ConnectionError | e.TimeoutError | OSError)


def _address(entry: list[Any], asked_host: str) -> tuple[str, int]:
    host = entry[0].decode() if isinstance(entry[0], bytes) else str(entry[0])
    if host in ("", "?"):  # the node does not know its own address: the one we asked
        host = asked_host
    return host, int(entry[1])
