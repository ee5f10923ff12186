"""Markdown -> mrkdwn, splitting, Slack text -> plain, and the throttled reply stream."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ifriend_slack.formatting import markdown_to_mrkdwn, mentions, slack_to_text, split_message
from ifriend_slack.replies import ReplyStream


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("~~struck~~", "~struck~"),
        ("[docs](https://example.com/a?b=1&c=2)", "<https://example.com/a?b=1&amp;c=2|docs>"),
        ("![chart](https://x.io/c.png)", "<https://x.io/c.png|chart>"),
        ("<https://example.com>", "<https://example.com>"),
        ("# Title", "*Title*"),
        ("### **Already bold**", "*Already bold*"),
        ("- one\n* two\n  + nested", "• one\n• two\n  • nested"),
        ("> quoted **text**", "&gt; quoted *text*"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("`**not bold** <x>`", "`**not bold** &lt;x&gt;`"),
        ("```python\nif a < b:\n    **x**\n```", "```\nif a &lt; b:\n    **x**\n```"),
        ("```\nunfinished block", "```\nunfinished block\n```"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
        ("---", "───"),
    ],
)
def test_markdown_to_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert markdown_to_mrkdwn(markdown) == mrkdwn


def test_split_keeps_every_piece_under_the_limit_and_loses_nothing() -> None:
    text = "\n\n".join(f"paragraph {i} " + "word " * (i % 40) for i in range(200))
    pieces = split_message(text, 300)
    assert all(len(p) <= 300 for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())


def test_split_prefers_paragraphs_then_lines() -> None:
    text = "a" * 100 + "\n\n" + "b" * 100 + "\n" + "c" * 100
    assert split_message(text, 250) == ["a" * 100 + "\n\n" + "b" * 100, "c" * 100]


def test_split_closes_and_reopens_code_blocks() -> None:
    code = "```\n" + "\n".join(f"line {i}" for i in range(100)) + "\n```"
    pieces = split_message(code, 200)
    assert len(pieces) > 2
    for piece in pieces:
        assert piece.startswith("```") and piece.endswith("```") and len(piece) <= 200


def test_split_never_cuts_an_entity_in_half() -> None:
    text = "&amp;" * 100
    for piece in split_message(text, 103):
        assert piece.count("&") == piece.count(";")


def test_slack_text_to_plain() -> None:
    text = "<@UBOT> hi <@U2|bob>, see <#C1|general> &amp; <https://a.io|A> <https://b.io> <!here>"
    assert slack_to_text(text, bot_user_id="UBOT") == "hi @U2, see #general & A (https://a.io) https://b.io @here"
    assert mentions(text, "UBOT") and not mentions(text, "U3") and not mentions(text, None)


class FakeClient:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.n = 0
        self.delay = delay

    async def chat_postMessage(self, **params: Any) -> dict[str, Any]:
        await asyncio.sleep(self.delay)
        self.n += 1
        self.calls.append(("post", params))
        return {"ts": f"1.{self.n}"}

    async def chat_update(self, **params: Any) -> dict[str, Any]:
        await asyncio.sleep(self.delay)
        self.calls.append(("update", params))
        return {"ts": params["ts"]}


async def test_the_stream_posts_at_once_then_updates_at_most_once_per_interval() -> None:
    client = FakeClient()
    stream = ReplyStream(client, channel="C", thread_ts="9.9", limit=1000, interval=0.3)
    await stream.show("Hello")
    await asyncio.sleep(0.05)
    assert [(kind, p["text"]) for kind, p in client.calls] == [("post", "Hello")]
    for word in ("wor", "world", "world, and"):
        await stream.show(f"Hello {word}")
        await asyncio.sleep(0.02)
    assert len(client.calls) == 1  # too soon: only the newest text will be shown
    await asyncio.sleep(0.4)
    assert [(kind, p["text"]) for kind, p in client.calls][1:] == [("update", "Hello world, and")]
    await stream.show("Hello world, and more")
    await stream.finish("Hello world, and **more**")  # the final text does not wait
    assert [(kind, p["text"]) for kind, p in client.calls][2:] == [("update", "Hello world, and *more*")]
    assert client.calls[0][1]["thread_ts"] == "9.9"


async def test_the_stream_does_not_hold_up_the_turn_while_slack_is_slow() -> None:
    client = FakeClient(delay=0.3)
    stream = ReplyStream(client, channel="C", thread_ts=None, limit=1000, interval=0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(10):
        await stream.show("word " * (i + 1))
        await asyncio.sleep(0.001)  # the turn's own work between replies
    assert loop.time() - started < 0.1
    await stream.finish("word " * 11)
    assert [kind for kind, _ in client.calls] == ["post", "update"]  # intermediate texts skipped
    assert stream.posted[0][1].split() == ["word"] * 11


async def test_an_aborted_stream_stops_rendering() -> None:
    client = FakeClient(delay=0.2)
    stream = ReplyStream(client, channel="C", thread_ts=None, limit=1000, interval=0)
    await stream.show("partial")
    await asyncio.sleep(0)
    await stream.abort()
    await asyncio.sleep(0.3)
    assert client.calls == []


async def test_the_stream_splits_long_answers_over_several_messages() -> None:
    client = FakeClient()
    stream = ReplyStream(client, channel="C", thread_ts=None, limit=200, interval=0)
    text = ""
    for i in range(60):
        text += f"sentence number {i}. "
        await stream.show(text)
    await stream.finish(text)
    posts = [p for kind, p in client.calls if kind == "post"]
    assert len(posts) == len(stream.posted) >= 5
    shown = " ".join(t for _, t in stream.posted)
    assert " ".join(shown.split()) == " ".join(text.split())
    assert all(len(t) <= 200 for _, t in stream.posted)


async def test_an_empty_answer_is_still_answered() -> None:
    client = FakeClient()
    stream = ReplyStream(client, channel="C", thread_ts="1.1", limit=1000, interval=0)
    await stream.finish("")
    assert client.calls[0][1]["text"] == "_(no answer)_"
