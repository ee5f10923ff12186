"""Every memory backend against ADK's InMemoryMemoryService on random corpora and queries.

The corpora mix ASCII, accented Latin (NFC and NFD), Cyrillic, CJK and Greek words with
separators, including words glued together and queries cut out of words. Sessions are
added whole or in deltas, entries deleted; then every query must find the same entries
as ADK, with ADK's score (distinct query words matched) deciding the order and ties
broken newest first, then by id. Where ADK's semantics are not defined (one event id in
two sessions, an unbounded result count) the generated cases stay away.
"""

from __future__ import annotations

import asyncio
import unicodedata
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest
from google.adk.events.event import Event
from google.adk.memory import in_memory_memory_service as adk_memory
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.sessions.session import Session
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ifriend import App
from ifriend.memory import MemoryLimits, MemoryService

from .backends import SUITE

APP = f"mh-{uuid.uuid4().hex[:8]}"
WORDS = [
    "apple", "Apple", "APPLE", "pie", "a", "ab", "x_y", "42", "py", "python", "thon",
    "café", unicodedata.normalize("NFD", "café"), "CAFÉ", "cafés", "naïve", "thé", "é", "É",
    "привет", "Привет", "ПРИВЕТ", "приветствие", "мир",
    "東京", "私は東京に住んでいます", "京", "大阪", "私はPythonを使う", "を使",
    "ΟΔΟΣ", "οδος", "Σ", "ς", "σ",
]
SEPARATORS = [" ", " ", ", ", ".", "-", "\n", ""]
LIMIT = 10

words = st.sampled_from(WORDS)
fragments = st.builds(lambda w, i, j: w[min(i, j) : max(i, j)] or w, words, st.integers(0, 12), st.integers(0, 12))
separators = st.sampled_from(SEPARATORS)


def _joined(parts: list[tuple[str, str]]) -> str:
    return "".join(word + sep for word, sep in parts).strip()


texts = st.lists(st.tuples(words, separators), min_size=1, max_size=6).map(_joined)
queries = st.lists(st.tuples(words | fragments, separators), min_size=1, max_size=4).map(_joined)
timestamps = st.sampled_from([1_700_000_000.0 + k * 0.5 for k in range(6)])  # ties included


@st.composite
def sessions(draw: st.DrawFn) -> list[list[Event]]:
    made = []
    for _ in range(draw(st.integers(1, 3))):
        events = []
        for _ in range(draw(st.integers(1, 6))):
            text = draw(st.none() | texts)
            content = types.Content(role="user", parts=[types.Part(text=text)]) if text is not None else None
            events.append(
                Event(
                    id=uuid.uuid4().hex[:8],
                    author=draw(st.sampled_from(["user", "bot"])),
                    invocation_id="i",
                    content=content,
                    timestamp=draw(timestamps),
                )
            )
        made.append(events)
    return made


# (kind, session index, event mask or event index)
steps = st.lists(
    st.tuples(st.sampled_from(["session", "events", "delete"]), st.integers(0, 2), st.integers(0, 63)),
    min_size=1,
    max_size=6,
)


@dataclass
class Services:
    wide: BaseMemoryService  # max_results large enough to see every match
    narrow: BaseMemoryService  # the default, 10


def adk_scores(events: list[Event], query: str) -> dict[str, int]:
    """ADK's own count of query words matched per event (in_memory_memory_service.py)."""
    words_in_query = adk_memory._extract_words_lower(query)
    scores = {}
    for e in events:
        text = " ".join(p.text for p in e.content.parts if p.text) if e.content and e.content.parts else ""
        words_in_event = adk_memory._extract_searchable_words(text)
        lower = unicodedata.normalize("NFC", text).lower()
        n = sum(1 for q in words_in_query if q in words_in_event or (not q.isascii() and q in lower))
        if words_in_event and n:
            scores[e.id] = n
    return scores


async def apply(service: BaseMemoryService, user: str, corpus: list[list[Event]], plan: list) -> None:
    for kind, index, mask in plan:
        events = corpus[index % len(corpus)]
        sid = f"s{index % len(corpus)}"
        chosen = [e for i, e in enumerate(events) if mask >> i & 1]
        if kind == "session":
            await service.add_session_to_memory(Session(id=sid, app_name=APP, user_id=user, events=chosen))
        elif kind == "events":
            await service.add_events_to_memory(app_name=APP, user_id=user, events=chosen, session_id=sid)
        else:
            await service.delete_memory(app_name=APP, user_id=user, memory_id=events[mask % len(events)].id)


async def check(services: Services, corpus: list[list[Event]], plan: list, query_list: list[str]) -> None:
    user = uuid.uuid4().hex[:8]
    adk = adk_memory.InMemoryMemoryService()
    await apply(adk, user, corpus, plan)
    await apply(services.wide, user, corpus, plan)
    every_event = {e.id: e for events in corpus for e in events}
    for query in query_list:
        expected = await adk.search_memory(app_name=APP, user_id=user, query=query)
        ours = await services.wide.search_memory(app_name=APP, user_id=user, query=query)
        top = await services.narrow.search_memory(app_name=APP, user_id=user, query=query)
        assert sorted(m.id for m in ours.memories) == sorted(m.id for m in expected.memories), query
        by_id = {m.id: m for m in expected.memories}
        assert all(m == by_id[m.id] for m in ours.memories)
        scores = adk_scores([every_event[m.id] for m in expected.memories], query)
        order = sorted(
            scores, key=lambda i: (scores[i], every_event[i].timestamp, i), reverse=True
        )
        assert [m.id for m in ours.memories] == order, query
        assert [m.id for m in top.memories] == order[:LIMIT], query
        adk_top = [scores[m.id] for m in expected.memories[:LIMIT]]
        assert [scores[m.id] for m in top.memories] == adk_top, query


@pytest.mark.parametrize("name", SUITE.params())
def test_search_matches_adk_in_memory(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SUITE.require(name)
    monkeypatch.setattr(adk_memory, "_MAX_SEARCH_RESULTS", 1000)
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()

    async def open_services() -> Services:
        app = await stack.enter_async_context(App(spec.build(memory={"max_results": 1000})))
        wide = app.memory_service
        assert isinstance(wide, MemoryService)
        return Services(wide, MemoryService(wide.store, limits=MemoryLimits(max_results=LIMIT)))

    try:
        services = loop.run_until_complete(open_services())

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(corpus=sessions(), plan=steps, query_list=st.lists(queries, min_size=1, max_size=4))
        def matches(corpus: list[list[Event]], plan: list, query_list: list[str]) -> None:
            loop.run_until_complete(check(services, corpus, plan, query_list))

        matches()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
