"""Privacy by default: a canary sent through whole turns appears in no span, metric or log.

Everything the process records is searched: span names, attributes, events and status
descriptions; metric names, descriptions and data point attributes; every log record
(captured at DEBUG, message and arguments).
"""

from __future__ import annotations

import logging
from typing import Any

from ifriend import App, Settings
from ifriend_slack.testing import mention

from ..captured import METRICS

CANARY = "canary-5d1e-violet-heron"
USER = "UCANARY42"


def leaks(needle: str, spans, records: list[logging.LogRecord] | None) -> list[str]:
    """Where `needle` was found, if anywhere."""
    found = []

    def look(where: str, value: Any) -> None:
        if needle in repr(value):
            found.append(f"{where}: {value!r}"[:300])

    for span in spans.get_finished_spans():
        look(f"span name {span.name}", span.name)
        look(f"span {span.name} attributes", dict(span.attributes or {}))
        look(f"span {span.name} status", span.status.description)
        look(f"span {span.name} resource", dict(span.resource.attributes))
        for event in span.events:
            look(f"span {span.name} event {event.name}", (event.name, dict(event.attributes or {})))
    data = METRICS.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                look(f"metric {metric.name}", (metric.name, metric.description, metric.unit))
                for point in metric.data.data_points:
                    look(f"metric {metric.name} point", dict(point.attributes or {}))
    for record in records or ():
        look(f"log {record.name}", record.getMessage())
        look(f"log {record.name} args", record.args)
        if record.exc_text:
            look(f"log {record.name} exception", record.exc_text)
    return found


async def test_a_canary_through_a_conversation_turn_leaves_no_trace(spans, caplog):
    caplog.set_level(logging.DEBUG)
    async with App() as app:
        text = f"please remember {CANARY} and what time is it"
        replies = [r async for r in app.conversations.turn(user_id=USER, session_id="c1", text=text)]
        replies += [r async for r in app.conversations.turn(user_id=USER, session_id="c1", text="and?")]
        session = await app.session_service.get_session(app_name="ifriend", user_id=USER, session_id="c1")
        await app.memory_service.add_session_to_memory(session)
        found = await app.memory_service.search_memory(app_name="ifriend", user_id=USER, query=CANARY)
    # The canary went all the way: the model saw it, the session and the memory hold it.
    assert CANARY in replies[-1].text
    assert any(CANARY in (p.text or "") for e in session.events for p in (e.content.parts or []))
    assert found.memories
    assert {s.name for s in spans.get_finished_spans()} >= {
        "ifriend.turn", "ifriend.session.append_event", "ifriend.memory.search_memory"
    }
    assert leaks(CANARY, spans, caplog.records) == []
    assert leaks(USER, spans, None) == []  # user ids are hashed in spans and metrics


async def test_a_canary_through_a_whole_slack_turn_leaves_no_trace(spans, caplog, make_bot, fake_slack):
    from ..slack.test_http import settle

    caplog.set_level(logging.DEBUG)
    bot = await make_bot()
    post = mention(f"my secret word is {CANARY}", user=USER)
    assert await bot.events.send(post) == 200
    await settle(bot)
    follow_up = mention("what did I say?", user=USER, thread_ts=post["ts"])
    assert await bot.events.send(follow_up) == 200
    assert await bot.events.send(follow_up, retry_num=1) == 200  # a retry: deduplicated
    await settle(bot)
    answers = [m["text"] for m in fake_slack.posts("C0001", post["ts"])]
    assert len(answers) == 2 and all(CANARY in a for a in answers)  # it went through the turns

    turns = [s for s in spans.get_finished_spans() if s.name == "ifriend.turn"]
    assert len(turns) == 2
    for turn in turns:
        assert turn.attributes["ifriend.channel"] == "slack"
        assert 0 <= turn.attributes["ifriend.turn.time_to_ack_s"] <= turn.attributes["ifriend.turn.duration_s"]
        assert turn.attributes["ifriend.turn.time_to_first_reply_s"] <= turn.attributes["ifriend.turn.duration_s"]
    assert leaks(CANARY, spans, caplog.records) == []
    assert leaks(USER, spans, None) == []


async def test_the_search_finds_the_canary_once_content_capture_is_asked_for(spans):
    """The control: with `capture_content = true`, ADK's spans carry the message."""
    settings = Settings.model_validate({"telemetry": {"capture_content": True}})
    async with App(settings) as app:
        async for _ in app.conversations.turn(user_id=USER, session_id="c1", text=f"hello {CANARY}"):
            pass
    assert leaks(CANARY, spans, None)


async def test_adk_debug_logs_that_quote_model_requests_stay_off(caplog):
    caplog.set_level(logging.DEBUG)
    adk_llm = logging.getLogger("google_adk.google.adk.models.google_llm")
    async with App():
        adk_llm.debug("LLM Request: %s", CANARY)
        adk_llm.info("Response received from the model.")
    assert CANARY not in caplog.text and "Response received" in caplog.text
    async with App(Settings.model_validate({"telemetry": {"capture_content": True}})):
        adk_llm.debug("LLM Request: %s", CANARY)
    assert CANARY in caplog.text
    assert logging.getLogger("google_adk").level == logging.NOTSET  # restored
