"""Two replicas (two Apps, each with its own bolt app) on one Redis and one MariaDB, tiered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from ifriend_bench.cleanup import delete_redis_keys, drop_tables
from ifriend_slack.testing import FakeSlack, event_body, feedback_click, mention, message, with_files

from .bots import Bot, earlier_count, slack_options, start_bot


@pytest.fixture
async def replicas(fake_slack: FakeSlack, redis_url: str, mysql_url: str) -> AsyncIterator[tuple[Bot, Bot]]:
    run = uuid.uuid4().hex[:10]
    redis_prefix, mysql_prefix = f"ifriend-test-{run}", f"ift_{run}_"
    settings = {
        "session": {"backend": "tiered"},
        "backends": {
            "redis": {"url": redis_url, "key_prefix": redis_prefix},
            "mysql": {"url": mysql_url, "table_prefix": mysql_prefix},
        },
        "channels": {"slack": slack_options(fake_slack)},
    }
    try:
        async with AsyncExitStack() as stack:
            one = await start_bot(stack, settings)
            two = await start_bot(stack, settings)
            assert one.channel.state.kind == two.channel.state.kind == "redis"
            yield one, two
    finally:
        await drop_tables(mysql_url, mysql_prefix)
        await delete_redis_keys(redis_url, redis_prefix)


async def test_replicas_answering_alternate_events_of_a_thread_keep_one_history(
    replicas: tuple[Bot, Bot], fake_slack: FakeSlack
) -> None:
    one, two = replicas
    root = mention("turn 0")
    assert await one.events.send(root) == 200
    await one.channel.drain(10)
    for k in range(1, 8):
        bot = (one, two)[k % 2]
        # Plain thread replies: the replica that never answered here finds the thread's session.
        assert await bot.events.send(message(f"turn {k}", thread_ts=root["ts"])) == 200
        await bot.channel.drain(10)
    answers = [m["text"] for m in fake_slack.posts("C0001", root["ts"])]
    assert len(answers) == 8
    for k, answer in enumerate(answers):
        assert f'You said: "turn {k}"' in answer
        if k:
            assert f'Earlier you said: "turn {k - 1}"' in answer
        assert earlier_count(answer) == k
    session_id = f"slack:T0001:C0001:{root['ts']}"
    seen_by_one = await one.history("U0001", session_id)
    seen_by_two = await two.history("U0001", session_id)
    assert seen_by_one == seen_by_two
    assert [author == "user" for author, _ in seen_by_one] == [True, False] * 8
    assert [text for author, text in seen_by_one if author == "user"] == [f"turn {k}" for k in range(8)]


async def test_an_event_delivered_to_both_replicas_is_answered_once(
    replicas: tuple[Bot, Bot], fake_slack: FakeSlack
) -> None:
    one, two = replicas
    post = mention("are you two listening?")
    body = event_body(post)
    statuses = await asyncio.gather(one.events.send(body), two.events.send(body, retry_num=1))
    assert statuses == [200, 200]
    await asyncio.gather(one.channel.drain(10), two.channel.drain(10))
    assert len(fake_slack.posts("C0001", post["ts"])) == 1
    # app_mention on one replica, the message event for the same post on the other.
    post = mention("and now?")
    await asyncio.gather(one.events.send(post), two.events.send({**post, "type": "message"}))
    await asyncio.gather(one.channel.drain(10), two.channel.drain(10))
    assert len(fake_slack.posts("C0001", post["ts"])) == 1


async def test_feedback_and_files_on_one_replica_are_in_the_other_replicas_history(
    replicas: tuple[Bot, Bot], fake_slack: FakeSlack
) -> None:
    one, two = replicas
    notes = fake_slack.add_file("notes.txt", b"x" * 5000, "text/plain")
    root = with_files(mention("read this"), notes)
    await one.events.send(root)
    await one.channel.drain(10)
    [answer] = fake_slack.posts("C0001", root["ts"])
    assert "You attached notes.txt (text/plain, 5000 bytes)" in answer["text"]
    # The click reaches the replica that did not answer; the next turn runs on the first one.
    await two.events.act(feedback_click(answer, positive=True))
    await fake_slack.wait_for(lambda: fake_slack.ephemerals)
    await one.events.send(message("thanks", thread_ts=root["ts"]))
    await one.channel.drain(10)
    session_id = f"slack:T0001:C0001:{root['ts']}"
    events = await one.events_of("U0001", session_id)
    assert [e.author == "user" for e in events] == [True, False, True, True, False]
    assert events[2].custom_metadata["ifriend_feedback"]["rating"] == "positive"
    assert await two.history("U0001", session_id) == await one.history("U0001", session_id)
    stored = events[0].model_dump_json()
    assert "xxxxxxxxxx" not in stored and "notes.txt" in stored  # the note, not the 5,000 bytes
