"""Arbitrary input to the session service, on every backend: each call either round-trips
exactly or raises a typed error (`InvalidInputError`) and leaves the stored session as it was.

Ids, state keys and values, event timestamps, texts and sizes, and read options are drawn
from the whole space a clumsy or hostile caller can reach: control characters, surrogates,
surrounding whitespace, non-strings, NaN and infinities, integers beyond 64 bits, tuples,
sets, bytes, values nested past the depth limit, events around the size limit.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.adk.sessions.session import Session
from google.genai import types
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ifriend import App
from ifriend.errors import InvalidInputError
from ifriend.sessions.store import filter_events
from ifriend.sessions.validation import MAX_RECENT_EVENTS, MAX_STATE_DEPTH

from ..backends import BackendSpec
from .backends import SUITE
from .test_hostile_input import nested

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, Any]], Any]

USER = "u"
MAX_EVENT_BYTES = 2048
MAX_STATE_VALUE_BYTES = 256
EXAMPLES = 80

any_char = st.characters(exclude_categories=())  # surrogates and control characters too
texts = st.text(any_char, max_size=8) | st.sampled_from(["a", "a b", "🙂", " a", "a ", "{a}|:%"])
printable = st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=8)


def mostly(usable: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usable values four times in five (so that the later steps run), else hostile ones."""
    return st.one_of(usable, usable, usable, usable, hostile)


ids = mostly(printable, texts | st.integers() | st.none() | st.just("x" * 129))


plain_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
hostile_values = (
    st.sampled_from([math.nan, math.inf, -math.inf, b"bytes", {1, 2}, (1, 2), {1: "int key"}, object()])
    | st.lists(st.floats(), min_size=1, max_size=2)  # NaN inside
    | st.sampled_from([MAX_STATE_DEPTH, MAX_STATE_DEPTH + 1, 32, 40]).map(nested)  # MariaDB: 32
    | st.text(st.sampled_from("ab"), min_size=MAX_STATE_VALUE_BYTES - 8, max_size=MAX_STATE_VALUE_BYTES + 8)
)
state_values = mostly(plain_json, hostile_values)
state_keys = mostly(
    st.tuples(st.sampled_from(["", "app:", "user:", "temp:"]), printable).map("".join),
    st.tuples(st.sampled_from(["", "app:", "user:", "temp:"]), texts).map("".join) | st.integers(),
)
states = st.dictionaries(state_keys, state_values, max_size=3)
timestamps = st.sampled_from([math.nan, math.inf, -math.inf]) | st.floats() | st.integers(-(2**70), 2**70)
event_texts = st.text(any_char, max_size=4) | st.integers(MAX_EVENT_BYTES - 300, MAX_EVENT_BYTES + 50).map(
    lambda n: "x" * n
)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(params=SUITE.params())
def running(request: pytest.FixtureRequest) -> Iterator[tuple[Runner, BaseSessionService]]:
    """(run, service): a service of the backend with small limits, on a loop of its own."""
    spec = SUITE.require(request.param)
    with opened(spec) as opened_service:
        yield opened_service


@pytest.fixture
def new_app_name() -> Callable[[], str]:
    prefix = f"prop-{uuid.uuid4().hex[:8]}-"
    return lambda: f"{prefix}{uuid.uuid4().hex[:8]}"


def test_any_ids_round_trip_or_are_refused(running, new_app_name) -> None:
    run, service = running

    @SETTINGS
    @given(app_suffix=mostly(printable, texts), user_id=ids, session_id=ids)
    def check(app_suffix: Any, user_id: Any, session_id: Any) -> None:
        app_name = new_app_name() + str(app_suffix)
        try:
            run(create_read_delete(service, app_name, user_id, session_id))
        finally:
            run(remove_sessions(service, app_name))

    check()


async def create_read_delete(service: BaseSessionService, app_name: str, user_id: Any, session_id: Any) -> None:
    try:
        session = await service.create_session(
            app_name=app_name, user_id=user_id, session_id=session_id, state={"user:u": 1}
        )
    except InvalidInputError as exc:
        event(f"create refused: {type(exc).__name__}")
        if _readable(app_name, user_id, session_id):
            assert await _stored(service, app_name, user_id, session_id) is None
        if _readable(app_name, user_id, "s"):
            assert await service.get_user_state(app_name=app_name, user_id=user_id) == {}
        return
    event("created")
    assert (session.app_name, session.user_id) == (app_name, user_id)
    if session_id not in (None, ""):
        assert session.id == session_id
    stored = await _stored(service, app_name, user_id, session.id)
    assert stored is not None and (stored.id, stored.user_id, stored.app_name) == (session.id, user_id, app_name)
    listed = await service.list_sessions(app_name=app_name, user_id=user_id)
    assert [(s.user_id, s.id) for s in listed.sessions] == [(user_id, session.id)]
    await service.delete_session(app_name=app_name, user_id=user_id, session_id=session.id)
    assert await _stored(service, app_name, user_id, session.id) is None


def test_any_state_and_event_round_trip_or_are_refused_with_nothing_written(running, new_app_name) -> None:
    run, service = running

    @SETTINGS
    @given(
        state=st.none() | states,
        event_id=mostly(st.none(), texts),
        timestamp=mostly(st.floats(0, 2e9), timestamps),
        text=event_texts,
        delta=states,
    )
    def check(state: Any, event_id: Any, timestamp: Any, text: str, delta: dict[Any, Any]) -> None:
        app_name = new_app_name()
        try:
            run(create_and_append(service, app_name, state, event_id, timestamp, text, delta))
        finally:
            run(remove_sessions(service, app_name))

    check()


async def create_and_append(
    service: BaseSessionService, app_name: str, state: Any, event_id: Any, timestamp: Any, text: str, delta: dict
) -> None:
    try:
        session = await service.create_session(app_name=app_name, user_id=USER, session_id="s", state=state)
    except InvalidInputError as exc:
        event(f"create refused: {type(exc).__name__}")
        assert await _stored(service, app_name, USER, "s") is None
        assert await service.get_user_state(app_name=app_name, user_id=USER) == {}
        return
    expected_state = _persisted(state or {})
    assert session.state == expected_state
    stored = await _stored(service, app_name, USER, "s")
    assert stored is not None and (stored.state, stored.events) == (expected_state, [])

    fields = {"id": event_id} if event_id is not None else {}
    actions = EventActions()
    actions.state_delta.update(delta)  # as a caller may, past pydantic's checks
    new = Event(
        author="user",
        invocation_id="inv",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=actions,
        timestamp=timestamp,
        **fields,
    )
    before = _snapshot(stored)
    user_state = await service.get_user_state(app_name=app_name, user_id=USER)
    try:
        appended = await service.append_event(session, new)
    except InvalidInputError as exc:
        event(f"append refused: {type(exc).__name__}")
        assert _snapshot(await _stored(service, app_name, USER, "s")) == before
        assert await service.get_user_state(app_name=app_name, user_id=USER) == user_state
        assert (session.events, session.state) == ([], expected_state)
        return
    event("appended")
    stored = await _stored(service, app_name, USER, "s")
    assert stored.events == [appended]
    assert stored.last_update_time == appended.timestamp == float(timestamp)
    expected_state.update(_persisted(delta))
    assert stored.state == expected_state


def test_any_read_options_give_adks_filter_or_are_refused(running, new_app_name) -> None:
    run, service = running
    app_name = new_app_name()
    times = [1.0e9, 1.0e9 + 5, 1.0e9 + 2, 1.0e9 + 9]
    session = run(service.create_session(app_name=app_name, user_id=USER, session_id="s"))
    for t in times:
        run(service.append_event(session, Event(author="user", invocation_id="inv", timestamp=t)))
    stored = run(_stored(service, app_name, USER, "s"))

    @SETTINGS
    @given(
        num_recent_events=st.none() | st.integers(min_value=-2, max_value=6) | st.integers(-2, 2**80),
        after_timestamp=st.none()
        | st.sampled_from([t + d for t in times for d in (-1, 0, 1)])
        | st.sampled_from([math.nan, math.inf, -math.inf])
        | st.floats()
        | st.integers(-(2**70), 2**70),
    )
    def check(num_recent_events: Any, after_timestamp: Any) -> None:
        config = GetSessionConfig.model_construct(num_recent_events=num_recent_events, after_timestamp=after_timestamp)
        try:
            got = run(service.get_session(app_name=app_name, user_id=USER, session_id="s", config=config))
        except InvalidInputError as exc:
            event(f"read refused: {type(exc).__name__}")
            return
        event("read")
        want = filter_events(stored.events, _counted(num_recent_events), after_timestamp)
        assert got is not None and [e.id for e in got.events] == [e.id for e in want]

    try:
        check()
    finally:
        run(remove_sessions(service, app_name))


def _counted(n: int | None) -> int | None:
    return None if n is not None and n > MAX_RECENT_EVENTS else n


def _readable(app_name: str, user_id: Any, session_id: Any) -> bool:
    """Whether these ids can be read back, so a refused create can be checked."""
    return all(
        isinstance(v, str) and v and v == v.strip() and len(v) <= 128 and v.isprintable()
        for v in (app_name, user_id, session_id)
    )


async def _stored(service: BaseSessionService, app_name: str, user_id: str, session_id: str) -> Session | None:
    return await service.get_session(app_name=app_name, user_id=user_id, session_id=session_id)


def _persisted(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if not k.startswith("temp:")}


def _snapshot(session: Session | None) -> Any:
    if session is None:
        return None
    return ([e.id for e in session.events], session.state, session.last_update_time)


async def remove_sessions(service: BaseSessionService, app_name: str) -> None:
    try:
        listed = await service.list_sessions(app_name=app_name)
    except InvalidInputError:
        return
    for s in listed.sessions:
        await service.delete_session(app_name=app_name, user_id=s.user_id, session_id=s.id)


@contextmanager
def opened(spec: BackendSpec) -> Iterator[tuple[Runner, BaseSessionService]]:
    """A session service of `spec`'s backend with small limits, on a loop of its own."""
    loop = asyncio.new_event_loop()

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return loop.run_until_complete(coro)

    app = App(
        spec.build(session={"max_event_bytes": MAX_EVENT_BYTES, "max_state_value_bytes": MAX_STATE_VALUE_BYTES})
    )
    try:
        run(app.__aenter__())
        try:
            yield run, app.session_service
        finally:
            run(app.__aexit__(None, None, None))
    finally:
        loop.close()
