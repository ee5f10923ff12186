"""ADK's memory contract, one behaviour per test, for every backend in `BACKENDS`.

The reference is `google.adk.memory.InMemoryMemoryService`; ifriend differs where
docs/memory.md says so: ties are ranked newest first (ADK: insertion order),
the number of results is `[memory] max_results`, an event id is one memory per user
(ADK: one per session), and ids and sizes are validated before anything is written.
"""

from __future__ import annotations

import itertools
import time
import unicodedata

import pytest
from google.adk.events.event import Event
from google.adk.memory import _utils
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.session import Session
from google.genai import types

from ifriend.errors import EventTooLargeError, InvalidIdError

from ..captured import last_span

USER = "u1"
_clock = itertools.count(1)


def event(text: str | None, *, author: str = "user", timestamp: float | None = None, **fields) -> Event:
    content = types.Content(role="user", parts=[types.Part(text=text)]) if text is not None else None
    return Event(
        author=author,
        invocation_id="inv",
        content=content,
        # Distinct, increasing timestamps unless a test sets them.
        timestamp=timestamp if timestamp is not None else 1_700_000_000 + next(_clock),
        **fields,
    )


def session(app: str, events: list[Event], *, sid: str = "s1", user: str = USER) -> Session:
    return Session(id=sid, app_name=app, user_id=user, events=events)


async def search(service: BaseMemoryService, app: str, query: str, user: str = USER) -> list[MemoryEntry]:
    return (await service.search_memory(app_name=app, user_id=user, query=query)).memories


async def ids(service: BaseMemoryService, app: str, query: str, user: str = USER) -> list[str]:
    return [m.id for m in await search(service, app, query, user)]


# -- what a search returns -----------------------------------------------------------------


async def test_search_returns_adk_memory_entries(memory_service, app_name) -> None:
    e = event("The blue whale is the largest animal", author="agent")
    await memory_service.add_session_to_memory(session(app_name, [e]))
    [found] = await search(memory_service, app_name, "whale")
    assert isinstance(found, MemoryEntry)
    assert found.id == e.id
    assert found.author == "agent"
    assert found.content == e.content
    assert found.timestamp == _utils.format_timestamp(e.timestamp)


async def test_entries_equal_adks_for_the_same_session(memory_service, app_name) -> None:
    events = [event("alpha beta"), event("beta gamma", author="bot"), event("delta")]
    adk = InMemoryMemoryService()
    for service in (memory_service, adk):
        await service.add_session_to_memory(session(app_name, events))
    for query in ("alpha", "gamma", "delta", "beta alpha"):
        ours = sorted(await search(memory_service, app_name, query), key=lambda m: m.id)
        theirs = sorted(await search(adk, app_name, query), key=lambda m: m.id)
        assert ours == theirs


async def test_content_with_several_parts_and_non_text_parts_round_trips(memory_service, app_name) -> None:
    content = types.Content(
        role="model",
        parts=[
            types.Part(text="first part"),
            types.Part(inline_data=types.Blob(data=b"\x00\x01binary", mime_type="application/octet-stream")),
            types.Part(text="second part"),
        ],
    )
    e = Event(author="bot", invocation_id="i", content=content, timestamp=1_700_000_100.25)
    await memory_service.add_session_to_memory(session(app_name, [e]))
    [found] = await search(memory_service, app_name, "second")
    assert found.content == content


async def test_no_match_and_empty_queries_return_nothing(memory_service, app_name) -> None:
    await memory_service.add_session_to_memory(session(app_name, [event("hello world")]))
    assert await search(memory_service, app_name, "absent") == []
    assert await search(memory_service, app_name, "") == []
    assert await search(memory_service, app_name, "?! ...") == []
    assert await search(memory_service, "never-used-" + app_name, "hello") == []


# -- what is stored ------------------------------------------------------------------------


async def test_events_without_text_are_skipped(memory_service, app_name) -> None:
    call = types.Part(function_call=types.FunctionCall(name="lookup", args={"q": "whale"}))
    events = [
        event(None),
        Event(author="bot", invocation_id="i", content=types.Content(role="model", parts=[call])),
        event(""),
        event("... !!!"),
        event("whale"),
    ]
    await memory_service.add_session_to_memory(session(app_name, events))
    assert await ids(memory_service, app_name, "whale lookup q") == [events[-1].id]


async def test_a_session_added_twice_is_stored_once(memory_service, app_name) -> None:
    events = [event("apples and pears"), event("more apples")]
    await memory_service.add_session_to_memory(session(app_name, events))
    await memory_service.add_session_to_memory(session(app_name, events))
    assert sorted(await ids(memory_service, app_name, "apples")) == sorted(e.id for e in events)


async def test_events_added_twice_are_stored_once(memory_service, app_name) -> None:
    events = [event("kiwi salad"), event("kiwi juice")]
    for _ in range(2):
        await memory_service.add_events_to_memory(
            app_name=app_name, user_id=USER, events=events, session_id="s1"
        )
    await memory_service.add_events_to_memory(app_name=app_name, user_id=USER, events=events)
    await memory_service.add_session_to_memory(session(app_name, events))
    assert sorted(await ids(memory_service, app_name, "kiwi")) == sorted(e.id for e in events)


async def test_add_events_is_a_delta(memory_service, app_name) -> None:
    first, second = event("mango one"), event("mango two")
    await memory_service.add_events_to_memory(app_name=app_name, user_id=USER, events=[first])
    await memory_service.add_events_to_memory(app_name=app_name, user_id=USER, events=[second])
    assert sorted(await ids(memory_service, app_name, "mango")) == sorted([first.id, second.id])


async def test_a_session_added_again_replaces_its_entries(memory_service, app_name) -> None:
    """ADK's add_session_to_memory replaces what it holds of that session."""
    kept, dropped = event("plum tart"), event("plum jam")
    other = event("plum cake")
    await memory_service.add_session_to_memory(session(app_name, [kept, dropped]))
    await memory_service.add_session_to_memory(session(app_name, [other], sid="s2"))
    await memory_service.add_session_to_memory(session(app_name, [kept]))
    assert sorted(await ids(memory_service, app_name, "plum")) == sorted([kept.id, other.id])


async def test_a_changed_event_is_updated_when_its_session_is_added_again(memory_service, app_name) -> None:
    e = event("old words here")
    await memory_service.add_session_to_memory(session(app_name, [e]))
    changed = e.model_copy(update={"content": types.Content(role="user", parts=[types.Part(text="new words")])})
    await memory_service.add_session_to_memory(session(app_name, [changed]))
    assert await ids(memory_service, app_name, "old") == []
    [found] = await search(memory_service, app_name, "new")
    assert found.content == changed.content


# -- scope -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mine, theirs",
    [
        (("app", "a:b"), ("app", "a")),
        (("app", "a:b"), ("app:a", "b")),
        (("a|b", "c"), ("a", "b|c")),
        (("app", "a%3Ab"), ("app", "a:b")),
        (("x/y", "u"), ("x", "y/u")),
        (("app", "{tag}"), ("app", "tag")),
        (("app", "u 1"), ("app", "u")),
        (("app", "é"), ("app", "e\u0301")),
        (("app", "U"), ("app", "u")),
    ],
)
async def test_search_never_returns_another_users_memory(memory_service, app_name, mine, theirs) -> None:
    (app_a, user_a), (app_b, user_b) = mine, theirs
    app_a, app_b = app_name + app_a, app_name + app_b
    ours, others = event("secret garden"), event("secret garden")
    await memory_service.add_session_to_memory(session(app_a, [ours], user=user_a))
    await memory_service.add_session_to_memory(session(app_b, [others], user=user_b))
    assert await ids(memory_service, app_a, "secret", user_a) == [ours.id]
    assert await ids(memory_service, app_b, "secret", user_b) == [others.id]


async def test_delete_is_scoped_to_the_user(memory_service, app_name) -> None:
    shared = event("shared words")
    await memory_service.add_session_to_memory(session(app_name, [shared], user="a"))
    await memory_service.add_session_to_memory(session(app_name, [shared], user="b"))
    await memory_service.delete_memory(app_name=app_name, user_id="a", memory_id=shared.id)
    assert await ids(memory_service, app_name, "shared", "a") == []
    assert await ids(memory_service, app_name, "shared", "b") == [shared.id]


# -- matching --------------------------------------------------------------------------------


async def test_matching_is_case_insensitive(memory_service, app_name) -> None:
    e = event("Hello ÉCOLE Привет ΟΔΟΣ")
    await memory_service.add_session_to_memory(session(app_name, [e]))
    for query in ("hello", "HELLO", "école", "École", "привет", "ПРИВЕТ", "οδος", "ΟΔΟΣ"):
        assert await ids(memory_service, app_name, query) == [e.id], query


async def test_accents_match_in_nfc_and_nfd(memory_service, app_name) -> None:
    nfc = event(unicodedata.normalize("NFC", "un café crème"))
    nfd = event(unicodedata.normalize("NFD", "le thé glacé"))
    await memory_service.add_session_to_memory(session(app_name, [nfc, nfd]))
    for form in ("NFC", "NFD"):
        assert await ids(memory_service, app_name, unicodedata.normalize(form, "café")) == [nfc.id]
        assert await ids(memory_service, app_name, unicodedata.normalize(form, "thé")) == [nfd.id]
    assert await ids(memory_service, app_name, "cafe") == []  # accents are not folded (ADK)


async def test_ascii_words_match_whole_words_only(memory_service, app_name) -> None:
    e = event("python programming")
    await memory_service.add_session_to_memory(session(app_name, [e]))
    assert await ids(memory_service, app_name, "python") == [e.id]
    assert await ids(memory_service, app_name, "pyth") == []
    assert await ids(memory_service, app_name, "programming_") == []


async def test_non_ascii_words_match_inside_the_text(memory_service, app_name) -> None:
    """ADK looks for a non-ASCII query word anywhere in the event's lowercased text."""
    ja = event("私は東京に住んでいます")
    fr = event("des cafés serrés")
    ru = event("приветствие друзьям")
    await memory_service.add_session_to_memory(session(app_name, [ja, fr, ru]))
    assert await ids(memory_service, app_name, "東京") == [ja.id]
    assert await ids(memory_service, app_name, "京") == [ja.id]
    assert await ids(memory_service, app_name, "café") == [fr.id]
    assert await ids(memory_service, app_name, "rrés") == [fr.id]
    assert await ids(memory_service, app_name, "привет") == [ru.id]
    assert await ids(memory_service, app_name, "大阪") == []


async def test_latin_words_inside_cjk_text_match(memory_service, app_name) -> None:
    e = event("私はPythonを使う")
    await memory_service.add_session_to_memory(session(app_name, [e]))
    assert await ids(memory_service, app_name, "python") == [e.id]
    assert await ids(memory_service, app_name, "thon") == []


async def test_greek_final_sigma_matches_as_in_adk(memory_service, app_name) -> None:
    # In the text, Σ before ".Α" lowers to σ; as a word of its own, to ς: ADK matches both.
    e = event("ΟΔΟΣ.Α")
    adk = InMemoryMemoryService()
    for service in (memory_service, adk):
        await service.add_session_to_memory(session(app_name, [e]))
    for query in ("οδος", "οδοσ", "ΟΔΟΣ", "δος", "ς", "σ"):
        assert await ids(memory_service, app_name, query) == await ids(adk, app_name, query), query


async def test_long_words_match_exactly(memory_service, app_name) -> None:
    long_word = "x" * 300
    e = event(f"token {long_word} end")
    await memory_service.add_session_to_memory(session(app_name, [e]))
    assert await ids(memory_service, app_name, long_word) == [e.id]
    assert await ids(memory_service, app_name, long_word[:-1]) == []


# -- ranking ---------------------------------------------------------------------------------


async def test_more_query_words_matched_ranks_first(memory_service, app_name) -> None:
    one = event("red")
    three = event("red green blue", timestamp=1_600_000_000)
    two = event("green red red red")
    await memory_service.add_session_to_memory(session(app_name, [one, three, two]))
    assert await ids(memory_service, app_name, "red green blue red") == [three.id, two.id, one.id]


async def test_ties_rank_newest_first_then_by_id(memory_service, app_name) -> None:
    old = event("tie", timestamp=1_700_000_000.5)
    new = event("tie", timestamp=1_700_000_001.5)
    same_a = event("tie", timestamp=1_700_000_000.75, id="aaaa")
    same_b = event("tie", timestamp=1_700_000_000.75, id="bbbb")
    await memory_service.add_session_to_memory(session(app_name, [old, same_a, new, same_b]))
    assert await ids(memory_service, app_name, "tie") == [new.id, "bbbb", "aaaa", old.id]


async def test_at_most_ten_results_by_default(memory_service, app_name) -> None:
    events = [event(f"common word {i}") for i in range(25)]
    await memory_service.add_session_to_memory(session(app_name, events))
    found = await ids(memory_service, app_name, "common")
    assert found == [e.id for e in reversed(events)][:10]


async def test_max_results_is_configurable(open_memory, app_name) -> None:
    service = await open_memory(memory={"max_results": 3})
    events = [event(f"many items {i}") for i in range(8)] + [event("many items best")]
    await service.add_session_to_memory(session(app_name, events))
    assert await ids(service, app_name, "many best") == [events[-1].id, events[-2].id, events[-3].id]


async def test_the_best_entries_are_found_among_many(memory_service, app_name) -> None:
    """The best few among hundreds of partial matches (exercises the stores' pruning)."""
    filler = [event(f"the common words {i} and more") for i in range(300)]
    best = [event(f"the rare needle words {i}", timestamp=1_500_000_000 + i) for i in range(3)]
    middle = [event("rare needle words only", timestamp=1_400_000_000 + i) for i in range(12)]
    events = filler[:150] + best + middle + filler[150:]
    await memory_service.add_events_to_memory(app_name=app_name, user_id=USER, events=events)
    found = await ids(memory_service, app_name, "the rare needle words")
    assert found[:3] == [e.id for e in reversed(best)]
    assert found[3:] == [e.id for e in reversed(middle)][:7]


# -- delete and explicit memories ------------------------------------------------------------


async def test_delete_memory_removes_the_entry_for_good(memory_service, app_name) -> None:
    gone, kept = event("fig tree"), event("fig leaf")
    await memory_service.add_session_to_memory(session(app_name, [gone, kept]))
    await memory_service.delete_memory(app_name=app_name, user_id=USER, memory_id=gone.id)
    assert await ids(memory_service, app_name, "fig") == [kept.id]
    await memory_service.add_session_to_memory(session(app_name, [gone, kept]))
    await memory_service.add_events_to_memory(app_name=app_name, user_id=USER, events=[gone])
    assert await ids(memory_service, app_name, "fig") == [kept.id]


async def test_delete_of_unknown_or_no_id_is_a_no_op(memory_service, app_name) -> None:
    e = event("date palm")
    await memory_service.delete_memory(app_name=app_name, user_id=USER, memory_id=e.id)
    await memory_service.delete_memory(app_name=app_name, user_id=USER, memory_id=None)
    await memory_service.add_session_to_memory(session(app_name, [e]))
    assert await ids(memory_service, app_name, "palm") == [e.id]  # unknown ids leave no tombstone


async def test_add_memory_stores_explicit_entries(memory_service, app_name) -> None:
    with_id = MemoryEntry(
        id="fact-1",
        author="curator",
        timestamp="2024-05-01T10:00:00",
        custom_metadata={"source": "profile", "n": 1},
        content=types.Content(role="user", parts=[types.Part(text="prefers green tea")]),
    )
    without_id = MemoryEntry(content=types.Content(parts=[types.Part(text="allergic to green peppers")]))
    no_text = MemoryEntry(id="empty", content=types.Content(parts=[]))
    await memory_service.add_memory(app_name=app_name, user_id=USER, memories=[with_id, without_id, no_text])
    found = await search(memory_service, app_name, "green")
    assert [m.id for m in found][0] != "fact-1"  # the newer one first
    fact = next(m for m in found if m.id == "fact-1")
    assert fact.model_dump() == with_id.model_dump()
    other = next(m for m in found if m.id != "fact-1")
    assert other.id and other.content == without_id.content and other.timestamp
    await memory_service.add_memory(app_name=app_name, user_id=USER, memories=[with_id])
    assert len(await search(memory_service, app_name, "tea")) == 1


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", " padded", "x" * 129, "line\nbreak", "nul\x00"])
async def test_bad_ids_are_refused_before_anything_is_written(memory_service, app_name, bad) -> None:
    good = event("valid words")
    with pytest.raises(InvalidIdError):
        await memory_service.add_session_to_memory(session(app_name, [good], user=bad))
    with pytest.raises(InvalidIdError):
        await memory_service.add_session_to_memory(session(app_name, [good], sid=bad))
    if bad:  # ADK gives an event with an empty id a new one
        with pytest.raises(InvalidIdError):
            await memory_service.add_events_to_memory(
                app_name=app_name, user_id=USER, events=[good, event("x", id=bad)]
            )
    with pytest.raises(InvalidIdError):
        await memory_service.search_memory(app_name=app_name, user_id=bad, query="valid")
    with pytest.raises(InvalidIdError):
        await memory_service.delete_memory(app_name=bad, user_id=USER, memory_id="m")
    assert await ids(memory_service, app_name, "valid") == []


async def test_oversized_entries_are_refused_whole(open_memory, app_name) -> None:
    service = await open_memory(memory={"max_entry_bytes": 1024})
    small, big = event("small words"), event("big " * 400)
    with pytest.raises(EventTooLargeError):
        await service.add_session_to_memory(session(app_name, [small, big]))
    assert await ids(service, app_name, "small") == []


async def test_a_large_entry_within_the_limit_is_stored(memory_service, app_name) -> None:
    words = " ".join(f"w{i}" for i in range(5000))
    e = event(words + " Привет 東京")
    await memory_service.add_session_to_memory(session(app_name, [e]))
    assert await ids(memory_service, app_name, "w4999") == [e.id]
    assert await ids(memory_service, app_name, "京") == [e.id]


# -- telemetry -------------------------------------------------------------------------------


async def test_spans_carry_counts_never_text(memory_service, app_name, spans) -> None:
    await memory_service.add_session_to_memory(session(app_name, [event("confidential plans")]))
    await search(memory_service, app_name, "confidential")
    span = last_span(spans, "ifriend.memory.search_memory")
    assert span.attributes["ifriend.backend"] in ("memory", "redis", "mysql")
    assert span.attributes["ifriend.results"] == 1
    assert last_span(spans, "ifriend.memory.add_session_to_memory").attributes["ifriend.entries"] == 1
    for finished in spans.get_finished_spans():
        for value in (finished.attributes or {}).values():
            assert "confidential" not in str(value)
            assert USER != value


async def test_search_works_when_time_moves_on(memory_service, app_name) -> None:
    """Entries stay findable (the stores' expiry is days, not seconds)."""
    e = event("lasting memory", timestamp=time.time())
    await memory_service.add_session_to_memory(session(app_name, [e]))
    assert await ids(memory_service, app_name, "lasting") == [e.id]


async def test_a_long_session_is_added_and_replaced_whole(memory_service, app_name) -> None:
    events = [event(f"long session entry {i}") for i in range(1100)]
    await memory_service.add_session_to_memory(session(app_name, events))
    assert await ids(memory_service, app_name, "entry 0") == [events[0].id] + [e.id for e in reversed(events)][:9]
    await memory_service.add_session_to_memory(session(app_name, events[:3] + events[-3:]))
    found = await ids(memory_service, app_name, "long")
    assert found == [e.id for e in reversed(events[:3] + events[-3:])]
