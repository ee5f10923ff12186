"""The load every fault test runs: writers append, readers check, a fault strikes between.

Each session has one writer that appends numbered events and retries an event whose
append failed (same event id: applied once) until it is acknowledged. Readers read the
sessions from every replica, dropping their LRU first when told to, and compare with
what had been acknowledged before the read began: every acknowledged event must be
there, in order, once. After the fault, every replica and a fresh one read every
session in full. The result line is what the issue asks each fault test to print:
`lost_acked / stale_reads / dup / max_op_s`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from google.adk.events.event import Event
from google.genai import types

from ifriend import App
from ifriend.errors import StorageError

APP, USER = "faults", "u1"


def said(text: str) -> Event:
    return Event(author="user", content=types.Content(role="user", parts=[types.Part(text=text)]))


def texts(session: Any) -> list[str]:
    return [e.content.parts[0].text for e in session.events] if session else []


@dataclass
class Reader:
    """A replica the workload reads from; `cold` drops its LRU before every read."""

    name: str
    app: App
    cold: bool = False

    async def read(self, session_id: str) -> list[str]:
        if self.cold:
            self.app.session_service.store.cache.clear()
        got = await self.app.session_service.get_session(
            app_name=APP, user_id=USER, session_id=session_id
        )
        return texts(got)


@dataclass
class Result:
    name: str
    acked: int = 0
    reads: int = 0
    lost_acked: int = 0
    stale_reads: int = 0
    dup: int = 0
    failed_calls: int = 0
    max_op_s: float = 0.0
    errors: set[str] = field(default_factory=set)

    def line(self) -> str:
        return (
            f"fault={self.name} acked={self.acked} reads={self.reads} failed_calls={self.failed_calls} "
            f"lost_acked={self.lost_acked} stale_reads={self.stale_reads} dup={self.dup} "
            f"max_op_s={self.max_op_s:.2f}"
        )

    def check(self, *, max_op_s: float) -> None:
        print(self.line())
        assert (self.lost_acked, self.stale_reads, self.dup) == (0, 0, 0), self.line()
        assert self.acked > 0 and self.reads > 0, self.line()
        assert self.max_op_s <= max_op_s, f"a call outlived its deadline: {self.line()}"
        untyped = {e for e in self.errors if not e.startswith("typed:")}
        assert not untyped, f"untyped errors escaped: {untyped}"


class Workload:
    """`await Workload(writer, readers).run(fault)`: load before, during and after `fault()`."""

    def __init__(
        self,
        name: str,
        writer: App,
        readers: list[Reader],
        *,
        sessions: int = 3,
        settle_seconds: float = 0.5,
        pause_seconds: float = 0.01,
    ) -> None:
        self.result = Result(name)
        self.writer = writer
        self.readers = readers
        self.session_ids = [f"{name}-{i}" for i in range(sessions)]
        self.settle_seconds = settle_seconds
        self.pause_seconds = pause_seconds
        self.acked: dict[str, list[tuple[float, str]]] = {sid: [] for sid in self.session_ids}
        self._stop = asyncio.Event()

    async def _timed(self, call: Callable[[], Awaitable[Any]]) -> Any:
        started = time.monotonic()
        try:
            return await call()
        except StorageError as exc:
            self.result.failed_calls += 1
            self.result.errors.add(f"typed:{type(exc).__name__}")
            raise
        except Exception as exc:
            self.result.errors.add(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self.result.max_op_s = max(self.result.max_op_s, time.monotonic() - started)

    async def _write(self, session_id: str) -> None:
        service = self.writer.session_service
        session = await service.create_session(app_name=APP, user_id=USER, session_id=session_id)
        n = 0
        while not self._stop.is_set():
            event = said(f"{session_id}/{n}")
            while True:
                try:
                    await self._timed(lambda: service.append_event(session, event))
                    break
                except StorageError:
                    await asyncio.sleep(0.05)
                    if self._stop.is_set() and self._give_up:
                        return
            self.acked[session_id].append((time.monotonic(), event.content.parts[0].text))
            self.result.acked += 1
            n += 1
            await asyncio.sleep(self.pause_seconds)

    async def _check(self, reader: Reader, session_id: str) -> None:
        began = time.monotonic()
        must = [text for at, text in list(self.acked[session_id]) if at < began]
        try:
            got = await self._timed(lambda: reader.read(session_id))
        except StorageError:
            return
        self.result.reads += 1
        if len(got) != len(set(got)):
            self.result.dup += 1
        if got[: len(must)] != must:
            self.result.stale_reads += 1

    async def _read(self, reader: Reader) -> None:
        while not self._stop.is_set():
            for session_id in self.session_ids:
                await self._check(reader, session_id)
            await asyncio.sleep(self.pause_seconds)

    async def run(
        self, fault: Callable[[], Awaitable[None]], *, recover: Callable[[], Awaitable[None]] | None = None,
        final_readers: list[Reader] | None = None,
    ) -> Result:
        """Load for `settle_seconds`, run `fault()` under load, load again, then check all."""
        self._give_up = False
        writers = [asyncio.ensure_future(self._write(sid)) for sid in self.session_ids]
        readers = [asyncio.ensure_future(self._read(r)) for r in self.readers]
        try:
            await asyncio.sleep(self.settle_seconds)
            await fault()
            await asyncio.sleep(self.settle_seconds)
            if recover is not None:
                await recover()
            await asyncio.sleep(self.settle_seconds)
        finally:
            self._stop.set()
            await asyncio.gather(*readers, return_exceptions=True)
            self._give_up = True
            outcomes = await asyncio.wait_for(
                asyncio.gather(*writers, return_exceptions=True), timeout=60
            )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        for reader in [*self.readers, *(final_readers or [])]:
            for session_id in self.session_ids:
                got = await self._timed(lambda: reader.read(session_id))
                want = [text for _, text in self.acked[session_id]]
                self.result.lost_acked += len(set(want) - set(got))
                self.result.dup += len(got) - len(set(got))
                if got[: len(want)] != want:
                    self.result.stale_reads += 1
        return self.result
