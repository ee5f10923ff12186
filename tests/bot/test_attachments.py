"""Attachments: the note the session keeps, the file the model reads during its turn only,
and `Conversations.add_event` for events that are not turns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from google.adk.errors import StaleSessionError
from google.adk.events.event import Event
from google.adk.models.llm_request import LlmRequest
from google.adk.sessions import InMemorySessionService
from google.genai import types

from ifriend import App
from ifriend.assistant import build_assistant
from ifriend.attachments import Attachment, AttachmentsPlugin, is_text, parse_note, stored_message
from ifriend.conversations import Conversations

NOTES = Attachment(name="notes.txt", mime_type="text/plain", size=9, data=b"buy milk\n", source="test:1")
IMAGE = Attachment(name="a.png", mime_type="image/png", size=4, data=b"\x89PNG", source="test:2")
REFUSED = Attachment(name="big.pdf", mime_type="application/pdf", size=10**8, source="test:3", refused="too large")


@pytest.fixture
async def conversations() -> AsyncIterator[Conversations]:
    async with App() as app:
        yield app.conversations


async def answer(conversations: Conversations, text: str, attachments: list[Attachment] = (), session: str = "s") -> str:
    replies = [r async for r in conversations.turn(user_id="u", session_id=session, text=text, attachments=attachments)]
    return replies[-1].text


def test_a_note_names_the_file_and_parses_back() -> None:
    for attachment in (NOTES, IMAGE, REFUSED):
        parsed = parse_note(attachment.note)
        assert parsed == Attachment(
            name=attachment.name, mime_type=attachment.mime_type, size=attachment.size,
            source=attachment.source, refused=attachment.refused,
        )
    assert NOTES.note == '[file "notes.txt" (text/plain, 9 bytes) from test:1]'
    assert REFUSED.note == '[file "big.pdf" (application/pdf, 100000000 bytes) from test:3: not read, too large]'
    assert parse_note("[file notes.txt]") is None and parse_note("hello") is None


def test_names_cannot_break_out_of_their_note() -> None:
    sneaky = Attachment(name='x"] [file "y.txt', mime_type="text/plain", size=1, refused="a ] b\nc")
    parsed = parse_note(sneaky.note)
    assert parsed is not None and parsed.name == "x__ _file _y.txt" and parsed.refused == "a   b c"


def test_text_is_read_as_text_and_the_rest_as_inline_data() -> None:
    assert is_text("text/csv") and is_text("application/json; charset=utf-8") and is_text("application/ld+json")
    assert not is_text("image/png") and not is_text("application/pdf")
    [text] = NOTES.content()
    assert text.text == "buy milk\n"
    [blob] = IMAGE.content()
    assert blob.inline_data is not None and blob.inline_data.data == b"\x89PNG"
    assert REFUSED.content() == []


def test_the_stored_message_holds_notes_not_bytes() -> None:
    stored = stored_message("look", [NOTES, IMAGE, REFUSED])
    assert [p.text for p in stored.parts] == ["look", NOTES.note, IMAGE.note, REFUSED.note]
    assert all(p.inline_data is None for p in stored.parts)


async def test_the_model_reads_the_files_during_their_turn_only(conversations: Conversations) -> None:
    first = await answer(conversations, "see these", [NOTES, IMAGE, REFUSED])
    assert 'You said: "see these". You attached notes.txt (text/plain, 9 bytes) and a.png (image/png, 4 bytes).' in first
    later = await answer(conversations, "and now?")
    assert "You attached" not in later and 'Earlier you said: "see these"' in later
    session = await conversations.session_service.get_session(app_name=conversations.app_name, user_id="u", session_id="s")
    stored = session.events[0].content
    assert [p.text for p in stored.parts] == ["see these", NOTES.note, IMAGE.note, REFUSED.note]


async def test_add_event_appends_to_an_existing_session_only(conversations: Conversations) -> None:
    feedback = Event(author="user", invocation_id="e-feedback", custom_metadata={"rating": "positive"})
    assert await conversations.add_event(user_id="u", session_id="nowhere", event=feedback) is False
    await answer(conversations, "hello")
    assert await conversations.add_event(user_id="u", session_id="s", event=feedback) is True
    session = await conversations.session_service.get_session(app_name=conversations.app_name, user_id="u", session_id="s")
    assert session.events[-1].custom_metadata == {"rating": "positive"}
    # The next turn runs on after it; the event is no message to the model.
    assert 'Earlier you said: "hello"' in await answer(conversations, "again")


async def test_a_file_shared_twice_is_read_once_by_the_newest_message() -> None:
    plugin = AttachmentsPlugin()
    request = LlmRequest(contents=[stored_message("first", [NOTES]), types.Content(role="model", parts=[types.Part(text="ok")]),
                                   stored_message("second", [NOTES])])
    stored = request.contents[2]
    async with plugin.attached("e-1", [NOTES]):
        await plugin.before_model_callback(callback_context=SimpleNamespace(invocation_id="e-2"), llm_request=request)
        assert [len(c.parts) for c in request.contents] == [2, 1, 2]  # another turn's request: untouched
        await plugin.before_model_callback(callback_context=SimpleNamespace(invocation_id="e-1"), llm_request=request)
    assert [len(c.parts) for c in request.contents] == [2, 1, 3]
    assert request.contents[2].parts[2].text == "buy milk\n"
    assert len(stored.parts) == 2 and request.contents[2] is not stored  # the session's copy is untouched


async def test_add_event_reads_the_session_again_after_losing_a_race() -> None:
    class RacedOnce(InMemorySessionService):
        raced = False

        async def append_event(self, session, event):  # type: ignore[no-untyped-def]
            if event.custom_metadata and not self.raced:
                self.raced = True
                raise StaleSessionError("another replica wrote first")
            return await super().append_event(session, event)

    service = RacedOnce()
    conversations = Conversations(app_name="raced", agent=build_assistant(), session_service=service)
    await service.create_session(app_name="raced", user_id="u", session_id="s")
    feedback = Event(author="user", invocation_id="e-feedback", custom_metadata={"rating": "negative"})
    assert await conversations.add_event(user_id="u", session_id="s", event=feedback) is True
    session = await service.get_session(app_name="raced", user_id="u", session_id="s")
    assert service.raced and [e.custom_metadata for e in session.events] == [{"rating": "negative"}]
