"""`[memory] auto_add`: sessions reach long-term memory after their replies, never before."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from ifriend import App, Settings, hookimpl
from ifriend.memory.store import MemoryRecord, MemoryScope
from ifriend_inprocess import InProcessMemoryStore

APP = "ifriend"


class SharedStore(InProcessMemoryStore):
    """An in-process store that outlives one App, counts adds, and can hold them or fail."""

    def __init__(self) -> None:
        super().__init__()
        self.adds: list[tuple[int, bool]] = []  # (records, replace)
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def add(self, scope: MemoryScope, records: Sequence[MemoryRecord], *, session_id: str | None, replace: bool) -> int:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("secret text that must not be logged")
        self.adds.append((len(records), replace))
        return await super().add(scope, records, session_id=session_id, replace=replace)


class Plugin:
    def __init__(self, store: SharedStore) -> None:
        self.store = store

    @hookimpl
    def register_memory_backends(self, register: Any) -> None:
        register("shared", lambda context: self.store)


def make_app(store: SharedStore, mode: str, **memory: Any) -> App:
    settings = Settings.model_validate({"memory": {"backend": "shared", "auto_add": mode, **memory}})
    return App(settings, plugins=[Plugin(store)])


async def turn(app: App, text: str, session_id: str = "s") -> str:
    replies = [r async for r in app.conversations.turn(user_id="u", session_id=session_id, text=text)]
    return replies[-1].text


async def settled(app: App) -> None:
    for _ in range(500):
        if not app._auto_memory.busy:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("memory adds did not finish")


async def found(app: App, query: str) -> list[str]:
    response = await app.memory_service.search_memory(app_name=APP, user_id="u", query=query)
    return [m.content.parts[0].text for m in response.memories]


async def test_off_adds_nothing() -> None:
    store = SharedStore()
    async with make_app(store, "off") as app:
        await turn(app, "remember the giraffe")
    assert store.adds == []


async def test_every_turn_adds_each_turns_new_events() -> None:
    store = SharedStore()
    async with make_app(store, "every_turn") as app:
        await turn(app, "remember the giraffe")
        await settled(app)
        assert "remember the giraffe" in await found(app, "giraffe")
        await turn(app, "and the zebra")
        await settled(app)
        assert "and the zebra" in await found(app, "zebra")
    first, second = store.adds
    assert first == (2, False)  # the message and the reply
    assert second[0] <= 3  # the new turn (and the last event again, stored once)


async def test_the_reply_does_not_wait_for_memory() -> None:
    store = SharedStore()
    store.gate = asyncio.Event()
    async with make_app(store, "every_turn") as app:
        reply = await asyncio.wait_for(turn(app, "a slow memory"), timeout=5)
        assert reply
        assert app._auto_memory.busy and store.adds == []
        store.gate.set()
        await settled(app)
    assert store.adds


async def test_on_close_adds_every_session_when_the_app_closes() -> None:
    store = SharedStore()
    async with make_app(store, "on_close") as app:
        await turn(app, "hello otter", session_id="a")
        await turn(app, "hello beaver", session_id="b")
        await asyncio.sleep(0.05)
        assert store.adds == []
    assert sorted(store.adds) == [(2, True), (2, True)]
    async with make_app(store, "off") as app:
        assert "hello otter" in await found(app, "otter")


async def test_on_close_adds_a_session_that_ends() -> None:
    store = SharedStore()
    async with make_app(store, "on_close") as app:
        await turn(app, "hello otter", session_id="a")
        app.end_session(user_id="u", session_id="a")
        await settled(app)
        assert store.adds == [(2, True)]
        app.end_session(user_id="u", session_id="a")  # nothing new since
        await settled(app)
    assert store.adds == [(2, True)]


async def test_on_close_adds_idle_sessions() -> None:
    store = SharedStore()
    async with make_app(store, "on_close", idle_close_seconds=0.2) as app:
        await turn(app, "hello otter")
        for _ in range(100):
            if store.adds:
                break
            await asyncio.sleep(0.02)
        assert store.adds == [(2, True)]


async def test_a_failed_add_is_logged_without_its_text(caplog: pytest.LogCaptureFixture) -> None:
    store = SharedStore()
    store.fail = True
    caplog.set_level(logging.WARNING, logger="ifriend.memory")
    async with make_app(store, "every_turn") as app:
        assert await turn(app, "private words")
        await settled(app)
    messages = [r.getMessage() for r in caplog.records if r.name == "ifriend.memory"]
    assert messages == ["memory: adding a session failed: RuntimeError"]
