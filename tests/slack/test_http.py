"""The real slack-bolt app in HTTP mode, signed Events API requests, a fake Slack Web API."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from ifriend_slack.testing import (
    BOT_ID,
    FakeSlack,
    as_message,
    event_body,
    mention,
    message,
    new_ts,
    signed_headers,
)

from .bots import APP_TOKEN, BOT_TOKEN, SECRET, Bot, MakeBot, earlier_count

LABEL = "[ifriend-echo] "


async def settle(bot: Bot) -> None:
    """Wait until every background turn of the bot is done."""
    await bot.channel.drain(10)


def replies(fake: FakeSlack, thread_ts: str, channel: str = "C0001") -> list[str]:
    return [m["text"] for m in fake.posts(channel, thread_ts)]


async def test_a_mention_is_answered_in_its_thread(bot: Bot, fake_slack: FakeSlack) -> None:
    post = mention("hello there")
    assert await bot.events.send(post) == 200
    await settle(bot)
    [answer] = fake_slack.calls_to("chat.postMessage")
    assert answer.params["thread_ts"] == post["ts"]
    assert answer.params["channel"] == "C0001"
    assert answer.token == BOT_TOKEN
    assert replies(fake_slack, post["ts"]) == [
        '[ifriend-echo] You said: "hello there". This is the start of our conversation.'
    ]
    # While working: a reaction on the post, removed once answered.
    [added] = fake_slack.calls_to("reactions.add")
    assert added.params.items() >= {"channel": "C0001", "timestamp": post["ts"], "name": "eyes"}.items()
    assert fake_slack.calls_to("reactions.remove")
    history = await bot.history("U0001", f"slack:T0001:C0001:{post['ts']}")
    assert [author == "user" for author, _ in history] == [True, False]


async def test_a_follow_up_in_the_thread_sees_the_history(bot: Bot, fake_slack: FakeSlack) -> None:
    root = mention("my name is Ada")
    await bot.events.send(root)
    await settle(bot)
    # A plain reply in the thread (no mention): the bot takes part in this thread.
    await bot.events.send(message("what is my name?", thread_ts=root["ts"]))
    await settle(bot)
    first, second = replies(fake_slack, root["ts"])
    assert "my name is Ada" in first
    assert second.startswith('[ifriend-echo] You said: "what is my name?". Earlier you said: "my name is Ada"')
    assert earlier_count(second) == 1


async def test_replies_in_threads_the_bot_is_not_part_of_are_ignored(bot: Bot, fake_slack: FakeSlack) -> None:
    root = new_ts()
    await bot.events.send(message("people talking", ts=root))
    await bot.events.send(message("among themselves", thread_ts=root))
    await settle(bot)
    assert fake_slack.calls_to("chat.postMessage") == []
    assert fake_slack.calls_to("reactions.add") == []


async def test_a_retried_event_is_answered_once(bot: Bot, fake_slack: FakeSlack) -> None:
    post = mention("only once please")
    body = event_body(post, event_id="Ev0RETRY")
    assert await bot.events.send(body) == 200
    assert await bot.events.send(body, retry_num=1) == 200
    assert await bot.events.send(body, retry_num=2) == 200
    await settle(bot)
    assert len(replies(fake_slack, post["ts"])) == 1
    assert len(fake_slack.calls_to("reactions.add")) == 1


async def test_app_mention_and_message_for_one_post_are_answered_once(bot: Bot, fake_slack: FakeSlack) -> None:
    post = mention("two deliveries")
    await asyncio.gather(bot.events.send(post), bot.events.send(as_message(post)))
    await settle(bot)
    assert len(replies(fake_slack, post["ts"])) == 1
    history = await bot.history("U0001", f"slack:T0001:C0001:{post['ts']}")
    assert len(history) == 2


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Slack-Signature": "v0=" + "0" * 64}, id="bad-signature"),
        pytest.param({"X-Slack-Request-Timestamp": str(int(time.time()) - 600)}, id="stale-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": str(int(time.time()) + 600)}, id="future-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": "not-a-number"}, id="non-numeric-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": ""}, id="empty-timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": None}, id="no-timestamp"),
        pytest.param({"X-Slack-Signature": None}, id="no-signature"),
    ],
)
async def test_unsigned_or_stale_requests_get_401(
    bot: Bot, fake_slack: FakeSlack, headers: dict[str, str | None], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps(event_body(mention("secret words in the body")))
    signed = signed_headers(SECRET, body)
    for name, value in headers.items():
        if value is None:
            signed.pop(name)
        else:
            signed[name] = value
    status, _ = await bot.events.post_raw(body, signed)
    assert status == 401
    await settle(bot)
    assert fake_slack.calls_to("chat.postMessage") == []
    assert "secret words in the body" not in caplog.text  # bolt logs bodies at INFO


async def test_a_body_signed_with_another_secret_gets_401(bot: Bot) -> None:
    assert await bot.events.send(mention("hi"), secret="another-secret") == 401


async def test_url_verification_answers_the_challenge(bot: Bot) -> None:
    body = json.dumps({"token": "x", "challenge": "c-123", "type": "url_verification"})
    status, text = await bot.events.post_raw(body, signed_headers(SECRET, body))
    assert status == 200
    assert "c-123" in text


async def test_events_no_listener_handles_are_acked_with_200(bot: Bot, fake_slack: FakeSlack) -> None:
    reaction = {"type": "reaction_added", "user": "U0001", "reaction": "tada", "item": {"type": "message"}}
    assert await bot.events.send(reaction) == 200
    edited = message("edited", subtype="message_changed")
    assert await bot.events.send(edited) == 200
    # An interactive payload (no listener for actions at all): still 200, never a retried 404.
    form = "payload=" + json.dumps({"type": "block_actions", "team": {"id": "T0001"}, "user": {"id": "U0001"},
                                    "actions": [{"action_id": "a1"}]})
    headers = signed_headers(SECRET, form)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    status, _ = await bot.events.post_raw(form, headers)
    assert status == 200
    await settle(bot)
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_bot_messages_are_ignored(bot: Bot, fake_slack: FakeSlack) -> None:
    root = mention("start a thread")
    await bot.events.send(root)
    await settle(bot)
    assert len(replies(fake_slack, root["ts"])) == 1
    # Another bot replying in the thread, mentioning us, or posting as bot_message: no answer.
    await bot.events.send(message("beep", thread_ts=root["ts"], user="U0BOT2", bot_id="B0OTHER"))
    await bot.events.send(mention("beep boop", thread_ts=root["ts"], user="U0BOT2") | {"bot_id": "B0OTHER"})
    await bot.events.send(message("legacy", thread_ts=root["ts"], subtype="bot_message", bot_id="B0OTHER"))
    # Our own message echoed back by Slack.
    await bot.events.send(message("our answer", thread_ts=root["ts"], user="UBOT", bot_id=BOT_ID))
    await settle(bot)
    assert len(replies(fake_slack, root["ts"])) == 1


async def test_rate_limited_calls_are_retried_after_retry_after(bot: Bot, fake_slack: FakeSlack) -> None:
    fake_slack.fail("chat.postMessage", status=429, retry_after=0, times=2)
    post = mention("are you rate limited?")
    await bot.events.send(post)
    await settle(bot)
    attempts = fake_slack.calls_to("chat.postMessage", ok=False)
    assert [c.status for c in attempts] == [429, 429, 200]
    assert len(replies(fake_slack, post["ts"])) == 1


async def test_an_agent_error_is_answered_with_an_apology_and_logged_with_the_trace_id(
    make_bot: MakeBot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await make_bot(settings={"app": {"agent": "tests.slack.agents:exploding_agent"}})
    caplog.set_level(logging.ERROR, logger="ifriend_slack")
    post = mention("please fail")
    await bot.events.send(post)
    await settle(bot)
    [apology] = replies(fake_slack, post["ts"])
    assert apology.startswith("Sorry, something went wrong")
    [record] = [r for r in caplog.records if "Slack turn failed" in r.getMessage()]
    trace_id = apology.rsplit("trace ", 1)[1].rstrip(")")
    assert len(trace_id) == 32 and int(trace_id, 16)
    assert f"trace_id={trace_id}" in record.getMessage()
    assert "RuntimeError" in record.getMessage() and "_run_async_impl" in record.getMessage()
    assert "please fail" not in caplog.text  # no message text in the logs


async def test_two_turns_in_one_thread_at_once_run_in_order(bot: Bot, fake_slack: FakeSlack) -> None:
    root = mention("first question")
    # Hold the first answer in flight while the second post arrives.
    fake_slack.slow("chat.postMessage", 0.3)
    assert await bot.events.send(root) == 200
    assert await bot.events.send(message("second question", thread_ts=root["ts"])) == 200
    await settle(bot)
    first, second = replies(fake_slack, root["ts"])
    assert '"first question"' in first and "start of our conversation" in first
    assert '"second question"' in second and 'Earlier you said: "first question"' in second
    history = await bot.history("U0001", f"slack:T0001:C0001:{root['ts']}")
    assert [a == "user" for a, _ in history] == [True, False, True, False]


async def test_concurrent_mentions_in_one_thread_keep_one_consistent_history(
    bot: Bot, fake_slack: FakeSlack
) -> None:
    root = mention("zero")
    await bot.events.send(root)
    await settle(bot)
    posts = [mention(f"number {i}", thread_ts=root["ts"]) for i in range(1, 5)]
    await asyncio.gather(*(bot.events.send(p) for p in posts))
    await settle(bot)
    answers = replies(fake_slack, root["ts"])
    assert len(answers) == 5
    # Each answer saw every message before it.
    assert [earlier_count(answer) for answer in answers] == [0, 1, 2, 3, 4]
    history = await bot.history("U0001", f"slack:T0001:C0001:{root['ts']}")
    assert [a == "user" for a, _ in history] == [True, False] * 5


async def test_a_dm_continues_the_dms_current_session(bot: Bot, fake_slack: FakeSlack) -> None:
    dm = {"channel": "D0001", "channel_type": "im"}
    await bot.events.send(message("remember the milk", **dm))
    await settle(bot)
    await bot.events.send(message("what should I buy?", **dm))
    await settle(bot)
    first, second = [m for m in fake_slack.posts("D0001")]
    assert "thread_ts" not in first  # answered in the DM itself, not in a thread
    assert 'Earlier you said: "remember the milk"' in second["text"]
    # `new` starts a new session; the next message does not see the old one.
    await bot.events.send(message("new", **dm))
    await settle(bot)
    await bot.events.send(message("hello again", **dm))
    await settle(bot)
    texts = [m["text"] for m in fake_slack.posts("D0001")]
    assert texts[2].startswith("Started a new conversation")
    assert "start of our conversation" in texts[3]


async def test_long_answers_are_split_and_streamed(make_bot: MakeBot, fake_slack: FakeSlack) -> None:
    bot = await make_bot(slack={"max_message_chars": 500, "update_interval_seconds": 0})
    words = " ".join(f"word{i}" for i in range(300))  # ~2,400 characters echoed back
    post = mention(words)
    await bot.events.send(post)
    await settle(bot)
    pieces = replies(fake_slack, post["ts"])
    assert len(pieces) >= 5
    assert all(len(p) <= 500 for p in pieces)
    joined = " ".join(pieces)
    assert "word0 " in joined and "word299" in joined
    # Each message is posted once, then edited in place as the answer grows.
    assert len(fake_slack.calls_to("chat.postMessage")) == len(pieces)


async def test_updates_are_throttled(make_bot: MakeBot, fake_slack: FakeSlack) -> None:
    bot = await make_bot(slack={"update_interval_seconds": 30})
    post = mention(" ".join(f"w{i}" for i in range(60)))
    await bot.events.send(post)
    await settle(bot)
    # The echo model streams ~20 chunks: one post, then at most the final update.
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert len(fake_slack.calls_to("chat.update")) <= 1
    [answer] = replies(fake_slack, post["ts"])
    assert answer.endswith("This is the start of our conversation.")


async def test_markdown_is_converted_for_slack(bot: Bot, fake_slack: FakeSlack) -> None:
    post = mention("**bold** and [a link](https://example.com) & # not a heading")
    await bot.events.send(post)
    await settle(bot)
    [answer] = replies(fake_slack, post["ts"])
    assert "*bold*" in answer and "**" not in answer
    assert "<https://example.com|a link>" in answer
    assert "&amp;" in answer


async def test_the_assistant_status_is_set_when_enabled(make_bot: MakeBot, fake_slack: FakeSlack) -> None:
    bot = await make_bot(slack={"assistant_status": True, "working_reaction": ""})
    post = mention("status please")
    await bot.events.send(post)
    await settle(bot)
    [status] = fake_slack.calls_to("assistant.threads.setStatus")
    assert status.params.items() >= {
        "channel_id": "C0001", "thread_ts": post["ts"], "status": "is thinking..."
    }.items()
    assert fake_slack.calls_to("reactions.add") == []


async def test_tokens_never_reach_the_logs(
    make_bot: MakeBot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await make_bot(slack={"bolt_log_level": "DEBUG"})
    fake_slack.fail("chat.postMessage", status=429, retry_after=0)
    await bot.events.send(mention("hi"))
    await bot.events.send(mention("hi"), secret="wrong")
    await settle(bot)
    for secret in (BOT_TOKEN, SECRET, APP_TOKEN):
        assert secret not in caplog.text


async def test_bolt_leaves_other_loggers_alone(make_bot: MakeBot, fake_slack: FakeSlack) -> None:
    watched = [logging.getLogger(name) for name in ("ifriend", "ifriend_slack", "")]
    before = [(log.level, list(log.handlers), log.disabled) for log in watched]
    bot = await make_bot(slack={"bolt_log_level": "ERROR"})
    await bot.events.send(mention("hi"))
    await settle(bot)
    assert [(log.level, list(log.handlers), log.disabled) for log in watched] == before
    assert logging.getLogger("ifriend_slack.bolt").level == logging.ERROR
