"""Private servers for tests that stop, pause or restart them (the shared ones must keep running)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (both at most 65535)."""
    import random

    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class PrivateRedis:
    """A redis-server of the test's own on 127.0.0.1, without persistence."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (`make test` installs it)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_args: list[str] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no",
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def kill(self) -> None:
        """SIGKILL: the server dies at once, its data with it (no persistence)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)


SLOTS = 16384


@dataclass(eq=False)
class ClusterNode:
    """One redis-server of a `PrivateCluster` (its role changes with failovers)."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __repr__(self) -> str:
        return f"ClusterNode({self.port})"


class PrivateCluster:
    """A Redis Cluster of the test's own: 3 masters, each with 1 replica, on free ports of
    127.0.0.1, without persistence. For tests that pause, kill and fail over nodes.

        cluster = PrivateCluster(tmp_path)
        cluster.start()                      # a few seconds; state ok, every replica in sync
        master = cluster.node_for_key(key)   # the master holding the key's slot
        replica = cluster.replica_of(master)
        cluster.wait_in_sync(master)         # the replica has every write so far
        cluster.pause(replica)               # SIGSTOP: it stops replicating
        ...                                  # writes the replica will not have
        cluster.kill(master)                 # SIGKILL
        cluster.resume(replica)              # SIGCONT: it takes over (validity factor 0)
        assert cluster.wait_failover(master) is replica
        cluster.restart(master)              # back, as a replica of the new master
        cluster.stop()

    `cluster-node-timeout` is `node_timeout_ms` (default 1000), so a failover completes
    within about two seconds of the master's death. `url` names the first node (any node
    works as a seed); nodes are only queried while running and not paused.
    """

    def __init__(self, directory: Path, *, node_timeout_ms: int = 1000, start_timeout: float = 20) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (`make test` installs it)")
        self.binary = binary
        self.node_timeout_ms = node_timeout_ms
        self.start_timeout = start_timeout
        self.nodes: list[ClusterNode] = []
        for _ in range(6):
            port = free_cluster_port()
            node_dir = directory / f"cluster-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            self.nodes.append(ClusterNode(port, node_dir))

    @property
    def url(self) -> str:
        return self.nodes[0].url

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the six servers and join them: slots split over the first three, each of
        the others replicating one. Returns once every node says the cluster is ok."""
        deadline = time.monotonic() + self.start_timeout
        try:
            for node in self.nodes:
                self._launch(node)
            for node in self.nodes:
                self._wait(lambda node=node: self._client(node).ping(), deadline, f"{node} to answer")
            masters, replicas = self.nodes[:3], self.nodes[3:]
            for i, node in enumerate(self.nodes):
                self._client(node).execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
            for i, node in enumerate(masters):
                first, last = SLOTS * i // 3, SLOTS * (i + 1) // 3 - 1
                self._client(node).execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            seed = self._client(masters[0])
            for node in self.nodes[1:]:
                seed.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
            self._wait(lambda: all(self._info(n)["cluster_known_nodes"] == "6" for n in self.nodes),
                       deadline, "every node to know the others")
            for master, replica in zip(masters, replicas, strict=True):
                master_id = self._client(master).execute_command("CLUSTER", "MYID")
                self._wait(lambda r=replica, m=master_id: self._try(
                    lambda: self._client(r).execute_command("CLUSTER", "REPLICATE", m)),
                    deadline, f"{replica} to replicate {master}")
            self.wait_ok(timeout=max(0.1, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every node (paused ones too) and forget them."""
        for node in self.nodes:
            if node.process is not None:
                if node.process.poll() is None:
                    os.kill(node.process.pid, signal.SIGCONT)
                    node.process.kill()
                node.process.wait(timeout=10)
                node.process = None
            node.paused = False

    def restart(self, node: ClusterNode) -> None:
        """Start a killed node again; its nodes.conf makes it rejoin (a replica, if it was
        replaced meanwhile). It holds no data: there is no persistence."""
        if node.running:
            raise RuntimeError(f"{node} is running")
        self._launch(node)
        deadline = time.monotonic() + self.start_timeout
        self._wait(lambda: self._client(node).ping(), deadline, f"{node} to answer")

    # -- faults --------------------------------------------------------------------------

    def pause(self, node: ClusterNode) -> None:
        """SIGSTOP: the node answers nothing, neither clients nor the cluster bus."""
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGSTOP)
        node.paused = True

    def resume(self, node: ClusterNode) -> None:
        if node.process is not None:
            os.kill(node.process.pid, signal.SIGCONT)
        node.paused = False

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL: the node dies at once, with whatever it had not replicated."""
        assert node.process is not None
        node.process.kill()
        node.process.wait(timeout=10)
        node.process = None
        node.paused = False

    # -- slot migration (MOVED, ASK, TRYAGAIN) ------------------------------------------

    def start_migration(self, slot: int, to: ClusterNode) -> ClusterNode:
        """Mark `slot` MIGRATING on its master and IMPORTING on `to`; return the master."""
        source = self.slot_owner(slot)
        self._client(to).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", self._node_id(source))
        self._client(source).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", self._node_id(to))
        return source

    def migrate_keys(self, source: ClusterNode, to: ClusterNode, keys: list[str]) -> None:
        """MIGRATE `keys` from `source` to `to` (a migration started before)."""
        self._client(source).execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)

    def finish_migration(self, slot: int, to: ClusterNode) -> None:
        """Move the slot's remaining keys and make `to` its master, on every live master."""
        source = self.slot_owner(slot)
        keys = self._client(source).execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        if keys:
            self.migrate_keys(source, to, keys)
        new_id = self._node_id(to)
        for node in [to, source, *(m for m in self.masters() if m not in (to, source))]:
            self._client(node).execute_command("CLUSTER", "SETSLOT", slot, "NODE", new_id)

    def move_slot(self, slot: int, to: ClusterNode) -> None:
        """Move `slot` (and its keys) to master `to`: clients still sending there get MOVED."""
        self.start_migration(slot, to)
        self.finish_migration(slot, to)

    # -- topology ------------------------------------------------------------------------

    def live(self) -> list[ClusterNode]:
        """The nodes running and not paused."""
        return [n for n in self.nodes if n.running and not n.paused]

    def node_at(self, port: int) -> ClusterNode:
        return next(n for n in self.nodes if n.port == port)

    def slot_owners(self) -> dict[int, ClusterNode]:
        """First slot of each range -> its master, as a live node sees it."""
        for node in self.live():
            try:
                ranges = self._client(node).execute_command("CLUSTER", "SLOTS")
            except Exception:
                continue
            return {int(r[0]): self.node_at(int(r[2][1])) for r in ranges}
        raise RuntimeError("no live node of the cluster answers")

    def masters(self) -> list[ClusterNode]:
        return list(dict.fromkeys(self.slot_owners().values()))

    def node_for_key(self, key: str | bytes) -> ClusterNode:
        """The master holding `key`'s slot."""
        return self.slot_owner(self.slot_of(key))

    @staticmethod
    def slot_of(key: str | bytes) -> int:
        from redis.crc import key_slot

        return key_slot(key.encode() if isinstance(key, str) else key)

    def slot_owner(self, slot: int) -> ClusterNode:
        """The master serving `slot`, as a live node sees it."""
        for node in self.live():
            try:
                ranges = self._client(node).execute_command("CLUSTER", "SLOTS")
            except Exception:
                continue
            for first, last, master, *_ in ranges:
                if int(first) <= slot <= int(last):
                    return self.node_at(int(master[1]))
        raise RuntimeError(f"no live node knows who serves slot {slot}")

    def replica_of(self, master: ClusterNode) -> ClusterNode:
        """The node replicating `master` (as a live node other than it sees it)."""
        master_id = self._node_id(master)
        for node in self.live():
            if node is master:
                continue
            for line in self._client(node).execute_command("CLUSTER", "NODES").splitlines():
                fields = line.split()
                if "slave" in fields[2] and fields[3] == master_id:
                    return self.node_at(int(fields[1].split("@")[0].rsplit(":", 1)[1]))
        raise RuntimeError(f"{master} has no replica")

    def wait_failover(self, master: ClusterNode, *, timeout: float = 20) -> ClusterNode:
        """Wait until another node serves the slots `master` served and the cluster is ok
        again; return that node (the promoted replica)."""
        firsts = [first for first, owner in self.slot_owners().items() if owner is master]
        if not firsts:
            raise RuntimeError(f"{master} serves no slot")
        promoted: list[ClusterNode] = []

        def taken_over() -> bool:
            owners = self.slot_owners()
            new = {owners.get(first) for first in firsts}
            if len(new) != 1 or master in new or None in new:
                return False
            promoted[:] = list(new)
            return self._all_ok()

        self._wait(taken_over, time.monotonic() + timeout, f"the failover of {master}")
        return promoted[0]

    def wait_in_sync(self, master: ClusterNode, *, timeout: float = 10) -> None:
        """Wait until `master`'s replica has every write `master` has (replication offsets)."""
        replica = self.replica_of(master)

        def in_sync() -> bool:
            offset = int(self._client(master).info("replication")["master_repl_offset"])
            return int(self._client(replica).info("replication")["slave_repl_offset"]) >= offset

        self._wait(in_sync, time.monotonic() + timeout, f"{replica} to catch up with {master}")

    def wait_ok(self, *, timeout: float = 20) -> None:
        """Wait until every live node says cluster_state:ok, every slot served, and every
        live replica's link to its master is up."""
        self._wait(self._all_ok, time.monotonic() + timeout, "cluster_state:ok on every node")

    # -- helpers -------------------------------------------------------------------------

    def _launch(self, node: ClusterNode) -> None:
        node.process = subprocess.Popen(
            [
                self.binary, "--port", str(node.port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--cluster-replica-validity-factor", "0",
                "--repl-diskless-sync-delay", "0",  # a replica syncs at once, not after 5 s
                "--save", "", "--appendonly", "no", "--dir", str(node.directory),
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        node.paused = False

    def _client(self, node: ClusterNode) -> Any:
        import redis

        return redis.Redis(
            host="127.0.0.1", port=node.port, socket_timeout=2, socket_connect_timeout=2,
            decode_responses=True, single_connection_client=False,
        )

    def _info(self, node: ClusterNode) -> dict[str, str]:
        text = self._client(node).execute_command("CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def _node_id(self, node: ClusterNode) -> str:
        return self._client(node).execute_command("CLUSTER", "MYID")

    def _all_ok(self) -> bool:
        for node in self.live():
            info = self._info(node)
            if info["cluster_state"] != "ok" or info["cluster_slots_ok"] != str(SLOTS):
                return False
            replication = self._client(node).info("replication")
            if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                return False
        return True

    @staticmethod
    def _try(action: Callable[[], object]) -> bool:
        try:
            action()
        except Exception:
            return False
        return True

    @staticmethod
    def _wait(check: Callable[[], object], deadline: float, what: str) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except Exception as exc:
                last = exc
            time.sleep(0.05)
        detail = f" (last error: {last})" if last is not None else ""
        raise RuntimeError(f"timed out waiting for {what}{detail}")
