"""Files shared with a message reach the model (downloaded with the bot token), over HTTP and
Socket Mode; refused files are explained; the session keeps a note, not the bytes."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from ifriend.attachments import parse_note
from ifriend_slack.events import SharedFile
from ifriend_slack.files import FileReader
from ifriend_slack.settings import SlackSettings
from ifriend_slack.testing import FakeSlack, dm, mention, message, new_ts, with_files

from .bots import BOT_TOKEN, Bot, MakeBot

NOTES = b"buy milk\nwalk the dog\ncall the plumber\n!!"  # 41 bytes
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(params=["http", "socket"])
async def bot(make_bot: MakeBot, request: pytest.FixtureRequest) -> Bot:
    return await make_bot(slack={"streaming": True}, transport=request.param)


def final_text(fake: FakeSlack, channel: str, thread_ts: str | None = None) -> str:
    return fake.posts(channel, thread_ts)[-1]["text"]


async def test_a_shared_text_file_reaches_the_model(bot: Bot, fake_slack: FakeSlack) -> None:
    notes = fake_slack.add_file("notes.txt", NOTES, "text/plain")
    post = with_files(mention("what is on my list?"), notes)
    await bot.events.send(post)
    await bot.settle()

    answer = final_text(fake_slack, "C0001", post["ts"])
    assert answer.startswith('[ifriend-echo] You said: "what is on my list?". You attached notes.txt (text/plain, 41 bytes).')
    [download] = fake_slack.downloads
    assert download.token == BOT_TOKEN and download.status == 200
    # The session keeps the message and a note naming the file, not its content.
    events = await bot.events_of("U0001", f"slack:T0001:C0001:{post['ts']}")
    parts = events[0].content.parts
    assert [p.text for p in parts][0] == "what is on my list?"
    note = parse_note(parts[1].text)
    assert note is not None and (note.name, note.mime_type, note.size, note.source) == (
        "notes.txt", "text/plain", 41, f"slack:{notes['id']}"
    )
    assert len(parts) == 2 and b"walk the dog" not in json.dumps(events[0].model_dump(mode="json")).encode()
    # A later turn sees the note, not the file.
    await bot.events.send(message("and now?", thread_ts=post["ts"]))
    await bot.settle()
    later = final_text(fake_slack, "C0001", post["ts"])
    assert "You attached" not in later and 'Earlier you said: "what is on my list?"' in later
    assert len(fake_slack.downloads) == 1


async def test_images_reach_the_model_as_inline_data(bot: Bot, fake_slack: FakeSlack) -> None:
    image = fake_slack.add_file("chart.png", PNG, "image/png")
    thread = new_ts()
    post = with_files(dm("", thread_ts=thread), image)  # a file and no text
    await bot.events.send(post)
    await bot.settle()
    assert final_text(fake_slack, "D0001", thread).startswith(
        f"[ifriend-echo] You said nothing. You attached chart.png (image/png, {len(PNG)} bytes)."
    )


async def test_refused_files_are_explained_in_the_answer(make_bot: MakeBot, fake_slack: FakeSlack) -> None:
    bot = await make_bot(slack={"streaming": True, "max_file_bytes": 1024})
    big = fake_slack.add_file("big.pdf", b"%PDF" + b"0" * 4096, "application/pdf")
    archive = fake_slack.add_file("code.zip", b"PK\x03\x04", "application/zip")
    notes = fake_slack.add_file("notes.txt", NOTES, "text/plain")
    post = with_files(mention("three files"), big, archive, notes)
    await bot.events.send(post)
    await bot.settle()

    answer = final_text(fake_slack, "C0001", post["ts"])
    assert answer.startswith("> I could not read **big.pdf**: it is 4 KB, over the 1 KB limit.\n")
    assert "> I could not read **code.zip**: files of type application/zip are not read here." in answer
    assert "You attached notes.txt (text/plain, 41 bytes)." in answer  # the readable one still arrived
    assert [d.params["file"] for d in fake_slack.downloads] == [notes["id"]]  # refused before downloading
    # The session's notes say why, for the model and for later turns.
    events = await bot.events_of("U0001", f"slack:T0001:C0001:{post['ts']}")
    refused = {n.name: n.refused for p in events[0].content.parts if (n := parse_note(p.text))}
    assert refused["code.zip"] == "files of type application/zip are not read here"
    assert refused["big.pdf"] == "it is 4 KB, over the 1 KB limit" and refused["notes.txt"] is None


async def test_a_download_sent_to_the_sign_in_page_is_refused(bot: Bot, fake_slack: FakeSlack) -> None:
    fake_slack.files_need_sign_in = True  # as when the token lacks files:read
    notes = fake_slack.add_file("notes.txt", NOTES, "text/plain")
    post = with_files(mention("read it"), notes)
    await bot.events.send(post)
    await bot.settle()
    answer = final_text(fake_slack, "C0001", post["ts"])
    assert "> I could not read **notes.txt**: the download was redirected" in answer
    assert "You attached" not in answer
    [download] = fake_slack.downloads
    assert download.token == BOT_TOKEN and download.status == 302


async def test_files_are_only_fetched_from_slack(bot: Bot, fake_slack: FakeSlack) -> None:
    elsewhere: dict[str, Any] = {
        "id": "F0BAD",
        "name": "notes.txt",
        "mimetype": "text/plain",
        "size": 41,
        "url_private_download": "https://attacker.example/notes.txt",
    }
    post = with_files(mention("read it"), elsewhere)
    await bot.events.send(post)
    await bot.settle()
    assert "> I could not read **notes.txt**: its link does not point to Slack." in final_text(
        fake_slack, "C0001", post["ts"]
    )


async def test_a_file_slack_sends_by_id_only_is_described_first(bot: Bot, fake_slack: FakeSlack) -> None:
    notes = fake_slack.add_file("notes.txt", NOTES, "text/plain")
    post = with_files(mention("read it"), {"id": notes["id"], "file_access": "check_file_info"})
    await bot.events.send(post)
    await bot.settle()
    [info] = fake_slack.calls_to("files.info")
    assert info.params["file"] == notes["id"] and info.token == BOT_TOKEN
    assert "You attached notes.txt (text/plain, 41 bytes)." in final_text(fake_slack, "C0001", post["ts"])


async def test_no_token_no_download(fake_slack: FakeSlack) -> None:
    notes = fake_slack.add_file("notes.txt", NOTES, "text/plain")
    settings = SlackSettings(bot_token=BOT_TOKEN, app_token="xapp-1", api_url=fake_slack.api_url)
    async with aiohttp.ClientSession() as session:
        reader = FileReader(settings, session=session)
        [attachment] = await reader.read_all([SharedFile.parse(notes)], client=SimpleNamespace(token=None))
    assert attachment.refused == "there is no bot token to download it with" and attachment.data is None
    assert fake_slack.downloads == []


async def test_the_token_and_the_file_stay_out_of_the_logs(
    make_bot: MakeBot, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await make_bot(slack={"streaming": True, "bolt_log_level": "DEBUG"})
    notes = fake_slack.add_file("notes.txt", NOTES, "text/plain")
    fake_slack.refuse("chat.appendStream", "internal_error")
    await bot.events.send(with_files(mention("secret plans"), notes))
    await bot.settle()
    assert BOT_TOKEN not in caplog.text and "walk the dog" not in caplog.text
