"""The LRU's entries: a session's parsed log shared between its revisions, never copied per append."""

from __future__ import annotations

from google.adk.events.event import Event

from ifriend.sessions import Revision
from ifriend_tiered.cache import CachedSession, SessionCache


def _events(n: int, start: int = 0) -> list[Event]:
    return [Event(author="user", invocation_id=f"i{i}", id=f"e{i}") for i in range(start, start + n)]


def test_advancing_the_newest_entry_appends_to_the_shared_log() -> None:
    first = CachedSession.of(Revision("inc", 3), 1.0, {}, _events(3), 100)
    second = first.advanced(Revision("inc", 4), 2.0, {"k": 1}, _events(1, 3), 10)
    assert second.log is first.log  # no copy of the history
    assert [e.id for e in second.events] == ["e0", "e1", "e2", "e3"]
    assert [e.id for e in first.events] == ["e0", "e1", "e2"]  # the older revision is unchanged
    assert second.nbytes > first.nbytes


def test_advancing_an_older_entry_copies_its_own_part() -> None:
    first = CachedSession.of(Revision("inc", 2), 1.0, {}, _events(2), 100)
    newer = first.advanced(Revision("inc", 3), 2.0, {}, _events(1, 2), 10)
    other = first.advanced(Revision("inc", 3), 2.0, {}, [Event(author="x", invocation_id="j", id="other")], 10)
    assert other.log is not first.log
    assert [e.id for e in other.events] == ["e0", "e1", "other"]
    assert [e.id for e in newer.events] == ["e0", "e1", "e2"]


def test_events_are_the_callers_own_list() -> None:
    entry = CachedSession.of(Revision("inc", 2), 1.0, {}, _events(2), 100)
    events = entry.events
    events.append(Event(author="x", invocation_id="j"))
    assert len(entry.events) == 2
    assert entry.at(Revision("inc", 2), 3.0, {}).log is entry.log


def test_the_cache_keeps_the_newer_copy() -> None:
    cache = SessionCache(max_sessions=10, max_bytes=10**6)
    newer = CachedSession.of(Revision("inc", 5), 1.0, {}, _events(5), 100)
    cache.offer("k", newer)  # type: ignore[arg-type]
    cache.offer("k", CachedSession.of(Revision("inc", 4), 1.0, {}, _events(4), 100))  # type: ignore[arg-type]
    assert cache.get("k") is newer  # type: ignore[arg-type]
