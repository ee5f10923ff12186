"""Every backend against ADK's InMemorySessionService, driven by a hypothesis state machine.

Each step reads a fresh copy from the backend and, separately, from the model, so the two
see the same history; only `append_via_stale_copy` writes through an old copy, which ADK
would accept and ifriend must refuse (it is not applied to the model).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions import InMemorySessionService
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ifriend import App

from ..backends import BackendSpec
from .backends import SUITE

T = TypeVar("T")
Key = tuple[str, str]  # (user_id, session_id)

USERS = ["u", "a", "a:b", "b:c", "é", "🙂"]
users = st.sampled_from(USERS)
# Spaces inside session ids; ids with surrounding whitespace, which ADK strips, are refused
# (tests/contract/test_create.py).
session_ids = st.sampled_from(["a", "b:a", "a:b", "é", "🙂 a"]) | st.text(
    alphabet="ab:é🙂 ", max_size=4
).filter(lambda sid: sid == sid.strip())
state_keys = st.sampled_from(
    ["k", "n", "x:y", "app:k", "app:n", "user:k", "user:n", "temp:k", "temp:n"]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
state_dicts = st.dictionaries(state_keys, json_values, max_size=4)
clock_steps = st.sampled_from([0.0, 0.001, 0.5])  # ties included, never backwards

SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def same_events(ours: list[Event], model: list[Event]) -> None:
    assert [e.id for e in ours] == [e.id for e in model]
    for a, b in zip(ours, model, strict=True):
        assert (a.author, a.invocation_id, a.timestamp) == (b.author, b.invocation_id, b.timestamp)
        assert a.actions.state_delta == b.actions.state_delta
        assert a.content == b.content
        assert a == b


def machine_for(name: str, spec: BackendSpec) -> type[RuleBasedStateMachine]:
    class BackendMatchesAdkInMemory(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.app = App(spec.build())
            try:
                self.run(self.app.__aenter__())
            except BaseException:
                self.loop.close()
                raise
            self.ours = self.app.session_service
            self.model = InMemorySessionService()
            self.app_name = f"sm-{uuid.uuid4().hex[:12]}"
            # Event times are fixed (later than any creation time) so runs replay exactly.
            self.clock = 1_800_000_000.0
            # Our creation time of each live session: the model's differs by design.
            self.created_at: dict[Key, float] = {}
            self.appended: list[tuple[Key, Event, Event]] = []

        def run(self, coro: Coroutine[Any, Any, T]) -> T:
            return self.loop.run_until_complete(coro)

        def teardown(self) -> None:
            try:
                listed = self.run(self.ours.list_sessions(app_name=self.app_name))
                for s in listed.sessions:
                    self.run(
                        self.ours.delete_session(
                            app_name=self.app_name, user_id=s.user_id, session_id=s.id
                        )
                    )
                self.run(self.app.__aexit__(None, None, None))
            finally:
                self.loop.close()

        # -- helpers ------------------------------------------------------------------

        def live(self) -> list[Key]:
            users = self.model.sessions.get(self.app_name, {})
            return sorted((u, sid) for u, sessions in users.items() for sid in sessions)

        def fetch(self, key: Key, config: GetSessionConfig | None = None):
            user, sid = key
            ours = self.run(
                self.ours.get_session(
                    app_name=self.app_name, user_id=user, session_id=sid, config=config
                )
            )
            model = self.run(
                self.model.get_session(
                    app_name=self.app_name, user_id=user, session_id=sid, config=config
                )
            )
            return ours, model

        def expected_update_time(self, key: Key) -> float:
            """The model's, once an event set it; our own creation time before that."""
            user, sid = key
            stored = self.model.sessions[self.app_name][user][sid]
            return stored.last_update_time if stored.events else self.created_at[key]

        def new_event(self, delta: dict, text: str, step: float, partial: bool | None) -> Event:
            self.clock += step
            return Event(
                author="user",
                invocation_id="inv",
                content=types.Content(role="user", parts=[types.Part(text=text)]),
                actions=EventActions(state_delta=delta),
                timestamp=self.clock,
                partial=partial,
            )

        def append_both(self, key: Key, event: Event) -> None:
            ours, model = self.fetch(key)
            assert ours is not None and model is not None
            mine, theirs = event.model_copy(deep=True), event.model_copy(deep=True)
            self.run(self.ours.append_event(ours, mine))
            self.run(self.model.append_event(model, theirs))
            same_events(ours.events, model.events)
            assert ours.state == model.state  # temp: keys included, on the copies
            if not event.partial:
                self.appended.append((key, mine, theirs))

        def draw_key(self, data: st.DataObject, *, missing_too: bool) -> Key:
            live = self.live()
            choices = st.sampled_from(live) if live else st.nothing()
            if missing_too or not live:
                choices = choices | st.tuples(users, session_ids.filter(str.strip))
            return data.draw(choices)

        # -- rules ----------------------------------------------------------------------

        @rule(user=users, sid=st.none() | session_ids, state=state_dicts)
        def create(self, user: str, sid: str | None, state: dict) -> None:
            ours = model = None
            try:
                ours = self.run(
                    self.ours.create_session(
                        app_name=self.app_name, user_id=user, session_id=sid, state=dict(state)
                    )
                )
            except AlreadyExistsError:
                pass
            given = sid or ""
            try:
                # A generated id differs per service: give the model the one ours chose.
                model = self.run(
                    self.model.create_session(
                        app_name=self.app_name,
                        user_id=user,
                        session_id=ours.id if ours is not None else given,
                        state=dict(state),
                    )
                )
            except AlreadyExistsError:
                pass
            assert (ours is None) == (model is None), "AlreadyExistsError from one side only"
            if ours is None:
                return
            if given:
                assert ours.id == given
            else:
                assert ours.id.strip() == ours.id != ""
            assert (ours.app_name, ours.user_id, ours.events) == (self.app_name, user, [])
            assert ours.state == model.state
            self.created_at[(user, ours.id)] = ours.last_update_time

        @precondition(lambda self: self.live())
        @rule(data=st.data(), state=state_dicts)
        def create_a_taken_id(self, data, state: dict) -> None:
            user, sid = data.draw(st.sampled_from(self.live()))
            for service in (self.ours, self.model):
                with pytest.raises(AlreadyExistsError):
                    self.run(
                        service.create_session(
                            app_name=self.app_name, user_id=user, session_id=sid, state=dict(state)
                        )
                    )

        @precondition(lambda self: self.live())
        @rule(
            data=st.data(),
            delta=state_dicts,
            text=st.text(max_size=8),
            step=clock_steps,
            partial=st.sampled_from([None, None, None, False, True]),
        )
        def append(self, data, delta, text, step, partial) -> None:
            key = data.draw(st.sampled_from(self.live()))
            self.append_both(key, self.new_event(delta, text, step, partial))

        @precondition(lambda self: self.appended)
        @rule(data=st.data())
        def append_the_same_event_again(self, data) -> None:
            key, mine, theirs = data.draw(st.sampled_from(self.appended))
            ours, model = self.fetch(key)
            assert (ours is None) == (model is None)
            if ours is None:
                return
            self.run(self.ours.append_event(ours, mine))
            self.run(self.model.append_event(model, theirs))
            same_events(ours.events, model.events)
            assert ours.state == model.state

        @precondition(lambda self: self.live())
        @rule(data=st.data(), delta=state_dicts, step=clock_steps)
        def append_via_stale_copy(self, data, delta, step) -> None:
            key = data.draw(st.sampled_from(self.live()))
            stale, _ = self.fetch(key)
            self.append_both(key, self.new_event({"by": "other writer"}, "first", step, None))
            with pytest.raises(StaleSessionError):
                self.run(self.ours.append_event(stale, self.new_event(delta, "late", step, None)))

        @precondition(lambda self: self.live())
        @rule(data=st.data(), delta=state_dicts, step=clock_steps, other_writer=st.booleans())
        def retry_after_a_lost_reply(self, data, delta, step, other_writer) -> None:
            key = data.draw(st.sampled_from(self.live()))
            caller, _ = self.fetch(key)
            self.append_both(key, self.new_event(delta, "reply lost", step, None))
            _, retried, _ = self.appended[-1]
            if other_writer:
                self.append_both(key, self.new_event({"by": "other writer"}, "other", step, None))

            self.run(self.ours.append_event(caller, retried))  # stored already: a no-op

            assert caller.events[-1].id == retried.id
            follow_up = self.new_event({"k": "follow-up"}, "next", step, None)
            if other_writer:
                with pytest.raises(StaleSessionError):
                    self.run(self.ours.append_event(caller, follow_up))
            else:
                self.run(self.ours.append_event(caller, follow_up))
                model, theirs = self.fetch(key)[1], follow_up.model_copy(deep=True)
                self.run(self.model.append_event(model, theirs))
                self.appended.append((key, follow_up, theirs))

        @rule(
            data=st.data(),
            num_recent_events=st.none() | st.integers(0, 6),
            after=st.none() | st.sampled_from(["event", "between", "any"]),
        )
        def get(self, data, num_recent_events, after) -> None:
            key = self.draw_key(data, missing_too=True)
            times = sorted({mine.timestamp for _, mine, _ in self.appended})
            after_timestamp = None
            if after == "event" and times:
                after_timestamp = data.draw(st.sampled_from(times))
            elif after == "between" and times:
                after_timestamp = data.draw(st.sampled_from(times)) + 0.0001
            elif after == "any":
                after_timestamp = self.clock + data.draw(st.floats(-3.0, 1.0))
            config = GetSessionConfig(
                num_recent_events=num_recent_events, after_timestamp=after_timestamp
            )
            ours, model = self.fetch(key, config)
            assert (ours is None) == (model is None)
            if ours is not None:
                same_events(ours.events, model.events)
                assert ours.state == model.state

        @rule(user=st.none() | users)
        def list_sessions(self, user: str | None) -> None:
            ours = self.run(self.ours.list_sessions(app_name=self.app_name, user_id=user))
            model = self.run(self.model.list_sessions(app_name=self.app_name, user_id=user))
            by_key = {(s.user_id, s.id): s for s in model.sessions}
            assert sorted((s.user_id, s.id) for s in ours.sessions) == sorted(by_key)
            expected_order = sorted(
                by_key,
                key=lambda k: (self.expected_update_time(k), k[0], k[1]),
            )
            assert [(s.user_id, s.id) for s in ours.sessions] == expected_order
            for s in ours.sessions:
                m = by_key[(s.user_id, s.id)]
                assert s.events == [] and m.events == []
                assert s.state == m.state
                assert s.app_name == self.app_name
                assert s.last_update_time == self.expected_update_time((s.user_id, s.id))

        @rule(data=st.data())
        def delete(self, data) -> None:
            user, sid = self.draw_key(data, missing_too=True)
            for service in (self.ours, self.model):
                self.run(
                    service.delete_session(app_name=self.app_name, user_id=user, session_id=sid)
                )
            self.created_at.pop((user, sid), None)

        @rule(user=users)
        def get_user_state(self, user: str) -> None:
            ours = self.run(self.ours.get_user_state(app_name=self.app_name, user_id=user))
            model = self.run(self.model.get_user_state(app_name=self.app_name, user_id=user))
            assert ours == model

        # -- invariants -----------------------------------------------------------------

        @invariant()
        def same_sessions_events_and_state(self) -> None:
            listed = self.run(self.ours.list_sessions(app_name=self.app_name))
            assert sorted((s.user_id, s.id) for s in listed.sessions) == self.live()
            for key in self.live():
                ours, model = self.fetch(key)
                assert ours is not None and model is not None
                same_events(ours.events, model.events)
                assert ours.state == model.state
                assert ours.last_update_time == self.expected_update_time(key)

    BackendMatchesAdkInMemory.__name__ = f"{name.title()}MatchesAdkInMemory"
    return BackendMatchesAdkInMemory


@pytest.mark.parametrize("backend_name", SUITE.params())
def test_backend_matches_adk_in_memory_session_service(backend_name: str) -> None:
    spec = SUITE.require(backend_name)
    run_state_machine_as_test(machine_for(backend_name, spec), settings=SETTINGS)
