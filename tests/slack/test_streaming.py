"""`NativeStream` against the fake Slack through slack_sdk's real client: pacing, long answers,
code blocks across a cut, a rewritten answer, a failed turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from ifriend_slack.replies import ReplyStream
from ifriend_slack.streaming import NativeStream
from ifriend_slack.testing import FakeSlack

from .bots import BOT_TOKEN

THREAD = "1700000000.000001"


@pytest.fixture
async def client(fake_slack: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    yield AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)


def native(client: AsyncWebClient, *, limit: int = 1000, interval: float = 0.0, refused: list | None = None) -> NativeStream:
    def fallback(messages: list[str]) -> ReplyStream:
        return ReplyStream(client, channel="C1", thread_ts=THREAD, limit=3000, interval=0, posted=messages)

    return NativeStream(
        client, channel="C1", thread_ts=THREAD, team="T1", user="U1", limit=limit, interval=interval,
        fallback=fallback, on_refused=(refused.append if refused is not None else lambda exc: None),
    )


def methods(fake: FakeSlack) -> list[str]:
    return [c.method.removeprefix("chat.") for c in fake.calls]


async def test_texts_arriving_within_the_interval_are_coalesced(client: AsyncWebClient, fake_slack: FakeSlack) -> None:
    stream = native(client, interval=0.2)
    text = ""
    for word in ("one", " two", " three", " four"):
        text += word
        await stream.show(text)
        await asyncio.sleep(0.01)
    await stream.finish(text + " five.")
    # The first words at once, the rest once the interval is over, then the stop.
    assert methods(fake_slack) == ["startStream", "appendStream", "stopStream"]
    [message] = fake_slack.posts("C1")
    assert message["text"] == "one two three four five." and message["streaming"] is False


async def test_a_code_block_cut_in_two_is_closed_and_reopened(client: AsyncWebClient, fake_slack: FakeSlack) -> None:
    code = "\n".join(f"line_{i} = {i} * 2  # a comment to make it longer" for i in range(60))
    answer = "Here it is:\n\n```python\n" + code + "\n```\n\nThat is all."
    stream = native(client, limit=1000)
    await stream.show(answer[:200])
    await stream.finish(answer)
    pieces = [m["text"] for m in fake_slack.posts("C1")]
    assert len(pieces) >= 3 and all(len(p) <= 1000 for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)  # each renders on its own
    assert pieces[1].startswith("```\n") and pieces[0].endswith("\n```")
    assert pieces[-1].endswith("That is all.")
    assert sum(p.count("line_") for p in pieces) == 60


async def test_a_rewritten_answer_is_shown_by_editing(client: AsyncWebClient, fake_slack: FakeSlack) -> None:
    refused: list[BaseException] = []
    stream = native(client, refused=refused)
    await stream.show("The first attempt said this")
    await asyncio.sleep(0.05)
    await stream.finish("A retried turn says that instead.")
    [message] = fake_slack.posts("C1")
    assert message["text"] == "A retried turn says that instead."
    assert "chat.update" in [c.method for c in fake_slack.calls] and refused == []


async def test_a_refused_start_is_reported_and_posted_instead(client: AsyncWebClient, fake_slack: FakeSlack) -> None:
    fake_slack.refuse("chat.startStream", "missing_scope")
    refused: list[BaseException] = []
    stream = native(client, refused=refused)
    await stream.finish("**Posted** instead.")
    [error] = refused
    assert error.response["error"] == "missing_scope"  # type: ignore[attr-defined]
    [message] = fake_slack.posts("C1")
    assert message["text"] == "*Posted* instead."  # the post-and-update path speaks mrkdwn


async def test_an_aborted_turn_closes_its_stream(client: AsyncWebClient, fake_slack: FakeSlack) -> None:
    stream = native(client)
    await stream.show("half an answer")
    async with asyncio.timeout(5):
        while not stream.messages:  # the stream has started
            await asyncio.sleep(0.01)
    await stream.abort()
    [message] = fake_slack.posts("C1")
    assert message["text"] == "half an answer" and message["streaming"] is False
