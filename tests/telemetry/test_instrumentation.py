"""Spans and metrics of session, memory and chat operations (the OpenTelemetry API only).

The test process's providers (tests/conftest.py) record everything; an App started
here keeps them, as any second setup in a process does.
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import pytest
from google.adk.agents.base_agent import BaseAgent
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.sessions import InMemorySessionService
from google.genai import types

from ifriend import App, Settings, hookimpl, telemetry
from ifriend.telemetry.setup import ADK_CONTENT_SWITCHES
from ifriend_slack.dedupe import SLACK_DEDUPLICATED

from ..captured import last_span

APP = "ifriend"


def said(text: str, author: str = "user") -> Event:
    return Event(author=author, content=types.Content(role="user", parts=[types.Part(text=text)]))


def span_tree(spans):
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}

    def ancestors(span):
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            yield span

    return finished, ancestors


async def every_session_operation(app: App, app_name: str = APP) -> None:
    """Each session operation once (get twice: found, then not)."""
    service = app.session_service
    session = await service.create_session(app_name=app_name, user_id="u", session_id="s")
    await service.append_event(session, said("hello"))
    await service.get_session(app_name=app_name, user_id="u", session_id="s")
    await service.get_session(app_name=app_name, user_id="u", session_id="missing")
    await service.list_sessions(app_name=app_name, user_id="u")
    await service.get_user_state(app_name=app_name, user_id="u")
    await service.delete_session(app_name=app_name, user_id="u", session_id="s")


async def test_every_session_operation_is_a_span_and_a_duration_point(spans, metric_points):
    async with App() as app:
        await every_session_operation(app)

    ops = ["create_session", "append_event", "get_session", "list_sessions", "get_user_state", "delete_session"]
    for op in ops:
        span = last_span(spans, f"ifriend.session.{op}")
        assert span.attributes["ifriend.backend"] == span.attributes["ifriend.tier"] == "memory"
        points = metric_points.points(telemetry.OPERATION_DURATION, ifriend__operation=span.name)
        assert points, op
        assert all(a["ifriend.backend"] == "memory" and a["ifriend.tier"] == "memory" for a, _ in points)
    append = last_span(spans, "ifriend.session.append_event")
    assert append.attributes["ifriend.outcome"] == "applied"
    assert append.attributes["ifriend.events_written"] == 1
    outcomes = {
        a["ifriend.outcome"]: v
        for a, v in metric_points.points(
            telemetry.OPERATION_DURATION, ifriend__operation="ifriend.session.get_session"
        )
    }
    assert outcomes == {"ok": 1, "not_found": 1}
    gets = [s for s in spans.get_finished_spans() if s.name == "ifriend.session.get_session"]
    assert gets[0].attributes["ifriend.events"] == gets[0].attributes["ifriend.events_read"] == 1


async def test_a_failed_operation_records_its_error_type_only(spans, metric_points):
    async with App() as app:
        ghost = await app.session_service.create_session(app_name=APP, user_id="u", session_id="s")
        await app.session_service.delete_session(app_name=APP, user_id="u", session_id="s")
        with pytest.raises(SessionNotFoundError):
            await app.session_service.append_event(ghost, said("private words"))
    span = last_span(spans, "ifriend.session.append_event")
    assert span.attributes["error.type"] == "SessionNotFoundError"
    assert span.attributes["ifriend.outcome"] == "error"
    assert span.status.status_code.name == "ERROR"
    assert not span.status.description and not span.events
    [(labels, count)] = metric_points.points(
        telemetry.OPERATION_DURATION,
        ifriend__operation="ifriend.session.append_event",
        ifriend__outcome="error",
    )
    assert labels["error.type"] == "SessionNotFoundError" and count == 1


class AdkServices:
    """Registers ADK's own services as backends, which ifriend instruments in place."""

    @hookimpl
    def register_session_backends(self, register):
        register("adk", lambda context: InMemorySessionService())

    @hookimpl
    def register_memory_backends(self, register):
        register("adk", lambda context: InMemoryMemoryService())


async def test_adk_services_from_plugins_are_instrumented_in_place(spans, metric_points):
    settings = Settings.model_validate({"session": {"backend": "adk"}, "memory": {"backend": "adk"}})
    async with App(settings, plugins=[AdkServices()]) as app:
        assert isinstance(app.session_service, InMemorySessionService)
        assert isinstance(app.memory_service, InMemoryMemoryService)
        session = await app.session_service.create_session(app_name=APP, user_id="u", session_id="s")
        await app.session_service.append_event(session, said("remember the blue door"))
        session = await app.session_service.get_session(app_name=APP, user_id="u", session_id="s")
        await app.memory_service.add_session_to_memory(session)
        found = await app.memory_service.search_memory(app_name=APP, user_id="u", query="blue door")
    assert found.memories
    get = last_span(spans, "ifriend.session.get_session")
    assert (get.attributes["ifriend.backend"], get.attributes["ifriend.events"]) == ("adk", 1)
    add = last_span(spans, "ifriend.memory.add_session_to_memory")
    assert add.attributes["ifriend.events_written"] == 1
    search = last_span(spans, "ifriend.memory.search_memory")
    assert search.attributes["ifriend.memories_read"] == len(found.memories)
    for span in (get, add, search):
        assert "blue" not in repr(dict(span.attributes))
    assert metric_points.points(
        telemetry.OPERATION_DURATION, ifriend__operation="ifriend.memory.search_memory", ifriend__backend="adk"
    )


async def test_ifriend_memory_operations_are_operations_too(spans, metric_points):
    async with App() as app:
        await app.memory_service.search_memory(app_name=APP, user_id="u", query="anything")
    span = last_span(spans, "ifriend.memory.search_memory")
    assert span.attributes["ifriend.backend"] == "memory"
    assert metric_points.points(
        telemetry.OPERATION_DURATION, ifriend__operation="ifriend.memory.search_memory"
    )


async def test_a_turn_is_a_span_that_holds_adk_and_session_spans(spans, metric_points):
    async with App() as app:
        replies = [r async for r in app.conversations.turn(user_id="U42", session_id="t", text="hi there")]
    assert replies[-1].final
    finished, ancestors = span_tree(spans)
    [turn] = [s for s in finished if s.name == "ifriend.turn"]
    assert turn.parent is None
    assert turn.attributes["ifriend.channel"] == "direct"
    assert 0 < turn.attributes["ifriend.turn.time_to_first_reply_s"] <= turn.attributes["ifriend.turn.duration_s"]
    assert [e.name for e in turn.events] == ["first_reply"]
    session_spans = [s for s in finished if s.name.startswith("ifriend.session.")]
    adk_spans = [s for s in finished if s.instrumentation_scope.name == "gcp.vertex.agent"]
    assert session_spans and adk_spans
    for span in session_spans + adk_spans:
        assert span.context.trace_id == turn.context.trace_id
        assert turn in list(ancestors(span)), span.name
    # The appends ADK makes during the run nest under its own invocation spans.
    appends = [s for s in session_spans if s.name == "ifriend.session.append_event"]
    assert any(next(ancestors(s)).instrumentation_scope.name == "gcp.vertex.agent" for s in appends)
    assert metric_points.total(telemetry.TURN_DURATION, ifriend__channel="direct", ifriend__outcome="ok") == 1


async def test_a_channel_turn_is_joined_not_nested(spans):
    async with App() as app:
        with telemetry.turn("console", user_id="U1") as outer:
            outer.acked()
            async for _ in app.conversations.turn(user_id="U1", session_id="t", text="hi"):
                pass
    turns = [s for s in spans.get_finished_spans() if s.name == "ifriend.turn"]
    assert len(turns) == 1
    assert turns[0].attributes["ifriend.channel"] == "console"
    assert [e.name for e in turns[0].events] == ["ack", "first_reply"]
    assert turns[0].attributes["ifriend.turn.time_to_ack_s"] >= 0


class ExplodingAgent(BaseAgent):
    async def _run_async_impl(self, ctx):
        raise RuntimeError("the agent exploded with private words")
        yield  # pragma: no cover


async def test_a_failed_turn_logs_its_trace_id_and_error_type(spans, caplog):
    caplog.set_level(logging.ERROR, logger="ifriend.telemetry")
    async with App() as app:
        app.conversations.runner.agent = ExplodingAgent(name="exploding")
        with pytest.raises(RuntimeError):
            async for _ in app.conversations.turn(user_id="U1", session_id="t", text="hi"):
                pass
    turn = last_span(spans, "ifriend.turn")
    trace_id = format(turn.context.trace_id, "032x")
    assert turn.attributes["error.type"] == "RuntimeError"
    [record] = [r for r in caplog.records if r.name == "ifriend.telemetry"]
    assert f"trace_id={trace_id}" in record.getMessage()
    assert "RuntimeError" in record.getMessage() and "private" not in record.getMessage()


async def test_user_ids_are_hashed_unless_asked_for(spans):
    async with App() as app:
        async for _ in app.conversations.turn(user_id="U-REAL-ID", session_id="t", text="hi"):
            pass
        hashed = telemetry.user_id_attribute("U-REAL-ID")
    turn = last_span(spans, "ifriend.turn")
    assert turn.attributes["user.id"] == hashed
    assert len(hashed) == 16 and "U-REAL-ID" not in hashed
    assert all("U-REAL-ID" not in repr(dict(s.attributes)) for s in spans.get_finished_spans())

    settings = Settings.model_validate({"telemetry": {"capture_user_ids": True}})
    async with App(settings) as app:
        async for _ in app.conversations.turn(user_id="U-REAL-ID", session_id="t", text="hi"):
            pass
    assert last_span(spans, "ifriend.turn").attributes["user.id"] == "U-REAL-ID"


async def test_a_deployment_secret_makes_hashes_agree_across_processes():
    settings = Settings.model_validate({"telemetry": {"user_id_secret": "s3cret"}})
    async with App(settings):
        first = telemetry.user_id_attribute("U1")
    async with App(settings):
        second = telemetry.user_id_attribute("U1")
    async with App():
        default = telemetry.user_id_attribute("U1")
    assert first == second != default


async def test_adk_content_capture_is_off_unless_asked_for(monkeypatch):
    for name in ADK_CONTENT_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    async with App():
        assert os.environ["ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS"] == "false"
        assert os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] == "NO_CONTENT"
    assert "ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS" not in os.environ  # restored on exit
    async with App(Settings.model_validate({"telemetry": {"capture_content": True}})):
        assert os.environ["ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS"] == "true"
    from google.adk.telemetry.context import TelemetryConfig

    monkeypatch.setenv("ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS", "true")  # an operator's setting
    async with App():
        config = TelemetryConfig()
        assert not config.should_add_content_to_legacy_spans
        assert not config.should_add_content_to_experimental_spans
        assert not config.should_add_content_to_logs


def test_counters_take_attributes_by_keyword_or_mapping(metric_points):
    telemetry.count(SLACK_DEDUPLICATED, reason="retry")
    telemetry.count(SLACK_DEDUPLICATED, 2, {"reason": "mention"})
    assert metric_points.total(SLACK_DEDUPLICATED, reason="retry") == 1
    assert metric_points.total(SLACK_DEDUPLICATED, reason="mention") == 2


def test_note_outside_an_operation_goes_to_the_current_span(spans):
    with telemetry.tracer.start_as_current_span("outer"):
        telemetry.note({"ifriend.tier": "redis"}, **{"ifriend.rehydrated": True})
    span = last_span(spans, "outer")
    assert span.attributes["ifriend.tier"] == "redis" and span.attributes["ifriend.rehydrated"]


async def test_a_console_turn_is_labelled_and_a_handled_failure_still_counts(spans, caplog, metric_points):
    from ifriend_console.channel import ConsoleChannel

    caplog.set_level(logging.ERROR)
    async with App() as app:
        written: list[str] = []
        console = object.__new__(ConsoleChannel)  # just what turn() needs
        console.context, console.user_id, console.session_id = SimpleNamespace(app=app), "U1", "c"
        console._write = written.append
        console._say = written.append
        await console.turn("hello")
        app.conversations.runner.agent = ExplodingAgent(name="exploding")
        await console.turn("hello again")
    ok, failed = [s for s in spans.get_finished_spans() if s.name == "ifriend.turn"]
    assert ok.attributes["ifriend.channel"] == failed.attributes["ifriend.channel"] == "console"
    assert failed.attributes["error.type"] == "RuntimeError"
    trace_id = format(failed.context.trace_id, "032x")
    assert any(f"trace_id={trace_id}" in r.getMessage() for r in caplog.records)
    assert metric_points.total(telemetry.TURN_DURATION, ifriend__channel="console", ifriend__outcome="error") == 1


async def test_apps_whose_lives_overlap_keep_the_privacy_rules_of_the_one_still_running(monkeypatch):
    for name in ADK_CONTENT_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    first = App(Settings.model_validate({"telemetry": {"capture_user_ids": True}}))
    second = App()
    await first.__aenter__()
    await second.__aenter__()
    assert telemetry.user_id_attribute("U1") != "U1"  # the latest App's rules
    await first.__aexit__(None, None, None)  # not the latest: its exit changes nothing
    assert telemetry.user_id_attribute("U1") != "U1"
    assert os.environ["ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS"] == "false"
    await second.__aexit__(None, None, None)
    assert "ADK_CAPTURE_MESSAGE_CONTENT_IN_SPANS" not in os.environ
    assert not telemetry.privacy().capture_user_ids
