"""The native AI-app experience, over HTTP and Socket Mode: streamed answers, the thread status,
suggested prompts, thread titles and feedback buttons (real bolt app, fake Slack Web API)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from ifriend import App, Settings
from ifriend.errors import ConfigError
from ifriend_slack.settings import OAuthSettings, SlackSettings
from ifriend_slack.testing import (
    TEAM_ID,
    FakeSlack,
    app_home_opened,
    assistant_thread_started,
    dm,
    feedback_click,
    mention,
    message,
    new_ts,
    with_files,
)

from ..captured import MetricPoints, last_span
from ..telemetry.test_privacy import CANARY, USER, leaks
from .bots import BOT_TOKEN, Bot, MakeBot

STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")
PROMPTS = [
    {"title": "Summarize", "message": "Summarize this channel for me"},
    {"title": "Draft", "message": "Help me draft a reply"},
]
AI = {
    "streaming": True,
    "assistant_status": True,
    "loading_messages": ["Reading the thread...", "Thinking it over..."],
    "suggested_prompts": PROMPTS,
    "suggested_prompts_title": "Try one of these",
}


@pytest.fixture(params=["http", "socket"])
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def bot(make_bot: MakeBot, transport: str) -> Bot:
    return await make_bot(slack=AI, transport=transport)


@pytest.fixture
async def paced_bot(make_bot: MakeBot, transport: str) -> Bot:
    """A bot whose model streams its answer over a few hundred milliseconds."""
    return await make_bot(
        slack={**AI, "update_interval_seconds": 0.05},
        settings={"app": {"agent": "tests.slack.agents:paced_agent"}},
        transport=transport,
    )


def stream_of(fake: FakeSlack, channel: str, thread_ts: str) -> tuple[dict[str, Any], str]:
    """The one message streamed into a thread, and the methods that streamed it (`start append*
    stop` as a string)."""
    [streamed] = [m for m in fake.posts(channel, thread_ts) if m.get("markdown")]
    methods = []
    for call in fake.calls:
        if call.method == "chat.startStream" and call.params.get("thread_ts") == thread_ts and call.status == 200:
            methods.append("start")
        elif call.method in STREAM_METHODS[1:] and call.params.get("ts") == streamed["ts"]:
            methods.append(call.method.removeprefix("chat.").removesuffix("Stream"))
    return streamed, " ".join(methods)


async def answer_in(bot: Bot, user: str, session_id: str) -> str:
    """The text of the session's last model event (what the model answered)."""
    history = await bot.history(user, session_id)
    return [text for author, text in history if author != "user"][-1]


# --- native streaming ----------------------------------------------------------------------


async def test_a_thread_reply_is_streamed_natively(paced_bot: Bot, fake_slack: FakeSlack) -> None:
    bot = paced_bot
    root = mention("my name is Ada")
    await bot.events.send(root)
    await bot.settle()
    reply = message("what is my name? " + " ".join(f"w{i}" for i in range(30)), thread_ts=root["ts"])
    await bot.events.send(reply)
    await bot.settle()

    assert fake_slack.calls_to("chat.postMessage") == [] and fake_slack.calls_to("chat.update") == []
    _, second = fake_slack.posts("C0001", root["ts"])
    assert second["markdown"]
    answer = await answer_in(bot, "U0001", f"slack:T0001:C0001:{root['ts']}")
    assert second["text"] == answer  # the Markdown as the model wrote it
    assert 'Earlier you said: "my name is Ada"' in answer
    starts = [c for c in fake_slack.calls_to("chat.startStream") if c.params["thread_ts"] == root["ts"]]
    assert len(starts) == 2 and all(c.token == BOT_TOKEN for c in starts)
    # In a channel Slack needs the recipient: the user who asked, and their team.
    assert starts[1].params.items() >= {
        "channel": "C0001", "recipient_user_id": "U0001", "recipient_team_id": TEAM_ID
    }.items()
    methods = [c.method for c in fake_slack.calls if c.method in STREAM_METHODS and c.params.get("ts") == second["ts"]]
    assert re.fullmatch(r"(chat\.appendStream )*chat\.stopStream", " ".join(methods))
    assert methods.count("chat.appendStream") >= 2  # the answer grew after the stream started
    assert second["streaming"] is False and _feedback_element(second) is not None


async def test_a_dm_in_the_agent_view_is_streamed_and_its_thread_titled(bot: Bot, fake_slack: FakeSlack) -> None:
    thread = new_ts()
    first = dm("How do I rotate my API keys? Please explain it step by step for me", thread_ts=thread)
    await bot.events.send(first)
    await bot.settle()
    streamed, methods = stream_of(fake_slack, "D0001", thread)
    assert re.fullmatch(r"start( append)* stop", methods)
    assert streamed["text"] == await answer_in(bot, "U0001", f"slack:T0001:D0001:{thread}")
    [titled] = fake_slack.calls_to("assistant.threads.setTitle")
    assert titled.params.items() >= {"channel_id": "D0001", "thread_ts": thread}.items()
    assert titled.params["title"] == "How do I rotate my API keys? Please explain it step by…"
    # The thread's next message keeps its title.
    await bot.events.send(dm("and the old ones?", thread_ts=thread))
    await bot.settle()
    assert len(fake_slack.calls_to("assistant.threads.setTitle")) == 1
    assert len([m for m in fake_slack.posts("D0001", thread) if m.get("markdown")]) == 2


async def test_a_dm_outside_a_thread_is_posted_and_updated(bot: Bot, fake_slack: FakeSlack) -> None:
    # Slack streams into threads only; a DM's top level stays one conversation.
    await bot.events.send(dm("hello at the top"))
    await bot.settle()
    assert fake_slack.calls_to("chat.startStream") == []
    [answer] = fake_slack.posts("D0001")
    assert "thread_ts" not in answer and answer["text"].startswith("[ifriend-echo] You said")
    assert fake_slack.calls_to("reactions.add")  # no thread, no thread status: the reaction


async def test_refused_streaming_falls_back_and_is_remembered_for_the_workspace(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    fake_slack.refuse("chat.startStream", "feature_not_enabled")
    first = mention("stream please")
    await bot.events.send(first)
    await bot.settle()
    [answer] = fake_slack.posts("C0001", first["ts"])
    assert answer["text"].startswith('[ifriend-echo] You said: "stream please"')
    assert _feedback_element(answer) is not None  # the buttons come on the fallback path too
    assert [b["type"] for b in answer["blocks"]] == ["section", "context_actions"]
    second = mention("and now?")
    await bot.events.send(second)
    await bot.settle()
    assert len(fake_slack.calls_to("chat.startStream", ok=False)) == 1  # not tried again
    assert len(fake_slack.posts("C0001", second["ts"])) == 1


async def test_a_passing_streaming_failure_falls_back_for_that_turn_only(bot: Bot, fake_slack: FakeSlack) -> None:
    fake_slack.refuse("chat.startStream", "internal_error")
    first = mention("one")
    await bot.events.send(first)
    await bot.settle()
    assert fake_slack.calls_to("chat.postMessage")
    second = mention("two")
    await bot.events.send(second)
    await bot.settle()
    streamed, methods = stream_of(fake_slack, "C0001", second["ts"])
    assert methods.startswith("start") and methods.endswith("stop")


async def test_a_stream_failing_half_way_is_finished_by_editing_it(paced_bot: Bot, fake_slack: FakeSlack) -> None:
    bot = paced_bot
    fake_slack.refuse("chat.appendStream", "internal_error", times=5)
    post = mention(" ".join(f"word{i}" for i in range(40)))
    await bot.events.send(post)
    await bot.settle()
    [answer] = fake_slack.posts("C0001", post["ts"])
    assert answer["streaming"] is False  # stopped, then edited with the whole answer
    assert answer["text"].startswith("[ifriend-echo] You said:") and "word39" in answer["text"]
    assert answer["text"].endswith("This is the start of our conversation.")
    assert fake_slack.calls_to("chat.update") and _feedback_element(answer) is not None
    assert len(fake_slack.calls_to("chat.appendStream", ok=False)) == 1  # then no more streaming


async def test_a_long_answer_streams_over_several_messages(make_bot: MakeBot, fake_slack: FakeSlack) -> None:
    bot = await make_bot(slack={**AI, "max_streamed_chars": 1000, "update_interval_seconds": 0})
    post = mention(" ".join(f"word{i}" for i in range(400)))  # ~3,300 characters echoed back
    await bot.events.send(post)
    await bot.settle()
    pieces = [m for m in fake_slack.posts("C0001", post["ts"]) if m.get("markdown")]
    assert len(pieces) >= 4 and all(len(m["text"]) <= 1000 for m in pieces)
    assert all(m["streaming"] is False for m in pieces)
    answer = await answer_in(bot, "U0001", f"slack:T0001:C0001:{post['ts']}")
    assert " ".join(m["text"] for m in pieces) == answer  # cut at spaces, nothing lost
    assert [_feedback_element(m) is not None for m in pieces] == [False] * (len(pieces) - 1) + [True]


async def test_streaming_can_be_turned_off(make_bot: MakeBot, fake_slack: FakeSlack) -> None:
    bot = await make_bot(slack={**AI, "streaming": False})
    await bot.events.send(mention("no streaming"))
    await bot.settle()
    assert fake_slack.calls_to("chat.startStream") == [] and fake_slack.calls_to("chat.postMessage")


# --- status while working --------------------------------------------------------------------


async def test_the_thread_status_shows_the_loading_messages(bot: Bot, fake_slack: FakeSlack) -> None:
    post = mention("status please")
    await bot.events.send(post)
    await bot.settle()
    [status] = fake_slack.calls_to("assistant.threads.setStatus")
    assert status.params.items() >= {
        "channel_id": "C0001",
        "thread_ts": post["ts"],
        "status": "is thinking...",
        "loading_messages": ["Reading the thread...", "Thinking it over..."],
    }.items()
    assert fake_slack.calls_to("reactions.add") == []


async def test_a_refused_status_falls_back_to_the_reaction(bot: Bot, fake_slack: FakeSlack) -> None:
    fake_slack.refuse("assistant.threads.setStatus", "missing_scope")
    for text in ("first", "second"):
        post = mention(text)
        await bot.events.send(post)
        await bot.settle()
        [added] = [c for c in fake_slack.calls_to("reactions.add") if c.params["timestamp"] == post["ts"]]
        assert added.params["name"] == "eyes"
        assert [c for c in fake_slack.calls_to("reactions.remove") if c.params["timestamp"] == post["ts"]]
    # Refused once: the second turn went straight to the reaction.
    assert len(fake_slack.calls_to("assistant.threads.setStatus", ok=False)) == 1


# --- the agent view: suggested prompts ------------------------------------------------------


async def test_suggested_prompts_when_the_messages_tab_opens(bot: Bot, fake_slack: FakeSlack) -> None:
    await bot.events.send(app_home_opened(tab="home"))
    await bot.events.send(app_home_opened(tab="messages", channel="D0042"))
    [call] = await fake_slack.wait_for(lambda: fake_slack.calls_to("assistant.threads.setSuggestedPrompts"))
    assert call.params.items() >= {"channel_id": "D0042", "title": "Try one of these", "prompts": PROMPTS}.items()
    assert "thread_ts" not in call.params
    await bot.settle()
    assert len(fake_slack.calls_to("assistant.threads.setSuggestedPrompts")) == 1  # not for the home tab


async def test_suggested_prompts_when_an_assistant_thread_starts(bot: Bot, fake_slack: FakeSlack) -> None:
    started = assistant_thread_started(channel="D0007")
    await bot.events.send(started)
    [call] = await fake_slack.wait_for(lambda: fake_slack.calls_to("assistant.threads.setSuggestedPrompts"))
    assert call.params["channel_id"] == "D0007"
    assert call.params["thread_ts"] == started["assistant_thread"]["thread_ts"]
    assert call.params["prompts"] == PROMPTS


async def test_no_suggested_prompts_configured_means_no_call(make_bot: MakeBot, fake_slack: FakeSlack) -> None:
    bot = await make_bot(slack={"streaming": True})
    await bot.events.send(assistant_thread_started())
    await bot.events.send(app_home_opened())
    await bot.settle()
    assert fake_slack.calls_to("assistant.threads.setSuggestedPrompts") == []


# --- feedback ---------------------------------------------------------------------------------


def _feedback_element(posted: dict[str, Any]) -> dict[str, Any] | None:
    for block in posted.get("blocks") or []:
        for element in block.get("elements", []) if block.get("type") == "context_actions" else []:
            if element.get("type") == "feedback_buttons":
                return element
    return None


async def test_feedback_is_recorded_against_the_turn(
    bot: Bot, fake_slack: FakeSlack, spans: Any, metric_points: MetricPoints
) -> None:
    post = mention("rate me")
    await bot.events.send(post)
    await bot.settle()
    turn = last_span(spans, "ifriend.turn")
    [answer] = fake_slack.posts("C0001", post["ts"])

    assert await bot.events.act(feedback_click(answer, positive=False, user="U0009")) == 200
    [thanks] = await fake_slack.wait_for(lambda: fake_slack.ephemerals)
    assert thanks.items() >= {
        "channel": "C0001", "user": "U0009", "thread_ts": post["ts"], "text": "Thanks for the feedback!"
    }.items()

    trace_id = format(turn.context.trace_id, "032x")
    session_id = f"slack:T0001:C0001:{post['ts']}"
    *_, recorded = await bot.events_of("U0001", session_id)
    assert recorded.content is None and recorded.author == "user"
    assert recorded.custom_metadata == {
        "ifriend_feedback": {"rating": "negative", "trace_id": trace_id, "message_ts": answer["ts"], "by": "U0009"}
    }
    span = last_span(spans, "ifriend.slack.feedback")
    assert [link.context.span_id for link in span.links] == [turn.context.span_id]
    [event] = span.events
    assert event.name == "feedback" and dict(event.attributes) == {"rating": "negative", "trace_id": trace_id}
    assert metric_points.total("ifriend.slack.feedback", rating="negative") == 1
    # No message text copied anywhere the click went.
    assert "rate me" not in json.dumps(recorded.model_dump(mode="json")) + str(dict(span.attributes))


async def test_feedback_on_a_posted_answer(make_bot: MakeBot, fake_slack: FakeSlack, transport: str) -> None:
    bot = await make_bot(slack={"streaming": False}, transport=transport)
    await bot.events.send(dm("a top-level DM"))
    await bot.settle()
    [answer] = fake_slack.posts("D0001")
    assert answer["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": answer["text"]}}
    await bot.events.act(feedback_click(answer, positive=True))
    await fake_slack.wait_for(lambda: fake_slack.ephemerals)
    *_, recorded = await bot.events_of("U0001", "slack:T0001:D0001:dm")
    assert recorded.custom_metadata["ifriend_feedback"]["rating"] == "positive"


async def test_feedback_can_be_turned_off(make_bot: MakeBot, fake_slack: FakeSlack) -> None:
    bot = await make_bot(slack={**AI, "feedback": False})
    post = mention("no buttons")
    await bot.events.send(post)
    await bot.settle()
    [answer] = fake_slack.posts("C0001", post["ts"])
    assert "blocks" not in answer


# --- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"allowed_file_types": ["text"]}, "channels.slack.allowed_file_types"),
        ({"loading_messages": ["..."] * 11}, "channels.slack.loading_messages"),
        ({"suggested_prompts": PROMPTS * 3}, "channels.slack.suggested_prompts"),
        ({"suggested_prompts": [{"title": "", "message": "x"}]}, "channels.slack.suggested_prompts"),
        ({"max_file_bytes": 0}, "channels.slack.max_file_bytes"),
        ({"max_streamed_chars": 50_000}, "channels.slack.max_streamed_chars"),
    ],
)
def test_ai_settings_are_validated(options: dict[str, Any], key: str) -> None:
    slack = {"bot_token": BOT_TOKEN, "app_token": "xapp-1", **options}
    with pytest.raises(ConfigError) as caught:
        App(Settings.model_validate({"channels": {"slack": slack}})).build_channel("slack")
    assert key in str(caught.value)


def test_the_slack_guide_lists_every_setting_and_the_manifest_every_scope() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "slack.md").read_text(encoding="utf-8")
    configuration = guide.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^#? ?(\w+) = ", configuration, re.M))
    assert documented - {"enabled"} == set(SlackSettings.model_fields) - {"oauth"}  # enabled: every channel's
    manifest = guide.split("```yaml", 1)[1].split("```", 1)[0]
    scopes = re.findall(r"^      - ([a-z_]+:[a-z_]+)$", manifest, re.M)
    assert sorted(scopes) == sorted(OAuthSettings.model_fields["scopes"].default_factory())  # type: ignore[misc]


async def test_a_canary_through_the_ai_features_leaves_no_trace(
    bot: Bot, fake_slack: FakeSlack, spans: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Streaming (and its fallback), the status, a file and a feedback click: the message, the
    file's name and content appear in no span, metric or log."""
    caplog.set_level(logging.DEBUG)
    notes = fake_slack.add_file(f"{CANARY}.txt", f"the file says {CANARY}".encode(), "text/plain")
    refused = fake_slack.add_file(f"{CANARY}.zip", b"PK", "application/zip")
    fake_slack.refuse("chat.appendStream", "internal_error")
    post = with_files(mention(f"my secret word is {CANARY}", user=USER), notes, refused)
    await bot.events.send(post)
    await bot.settle()
    [answer] = fake_slack.posts("C0001", post["ts"])
    assert CANARY in answer["text"]  # it went through the turn
    await bot.events.act(feedback_click(answer, user=USER))
    await fake_slack.wait_for(lambda: fake_slack.ephemerals)
    assert last_span(spans, "ifriend.slack.feedback")
    assert leaks(CANARY, spans, caplog.records) == []
