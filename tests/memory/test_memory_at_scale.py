"""On a chat-like corpus of a few thousand entries, every backend finds what ADK finds.

The stores prune (`ifriend.memory.ranking` and its Lua port) and read postings in chunks;
here the queries of `ifriend bench memory` (keywords, whole sentences of common words,
non-ASCII words) run over enough entries to page through postings, and each result must
be ADK's: the same scores, in ifriend's order (newest first among equals).
"""

from __future__ import annotations

import uuid

import pytest
from google.adk.memory import in_memory_memory_service as adk_memory

from ifriend_bench.memory import SEARCH_KINDS, BenchConfig, Corpus

from .test_memory_matches_adk import adk_scores

ENTRIES = 1500


@pytest.fixture(scope="module")
def corpus():
    source = Corpus(BenchConfig("redis://unused", "mysql://unused", vocabulary=800, seed=3))
    events = [source.event() for _ in range(ENTRIES)]
    queries = [source.query(kind) for kind in SEARCH_KINDS for _ in range(10)]
    return events, queries


async def test_results_match_adk_on_thousands_of_entries(memory_service, corpus) -> None:
    events, queries = corpus
    app, user = f"scale-{uuid.uuid4().hex[:8]}", "u"
    adk = adk_memory.InMemoryMemoryService()
    for start in range(0, len(events), 500):
        chunk = events[start : start + 500]
        for service in (memory_service, adk):
            await service.add_events_to_memory(app_name=app, user_id=user, events=chunk, session_id="s")
    by_id = {e.id: e for e in events}
    for query in queries:
        ours = await memory_service.search_memory(app_name=app, user_id=user, query=query)
        theirs = await adk.search_memory(app_name=app, user_id=user, query=query)
        scores = adk_scores(events, query)
        expected = sorted(scores, key=lambda i: (scores[i], by_id[i].timestamp, i), reverse=True)[:10]
        assert [m.id for m in ours.memories] == expected, query
        assert [scores[m.id] for m in ours.memories] == [scores[m.id] for m in theirs.memories], query
