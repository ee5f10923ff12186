"""Files a user attached to a message: what the session keeps, and what the model reads.

A channel turns each file into an `Attachment` and hands them to `Conversations.turn`.
The user's message, as stored in the session, carries one short note per file: its name,
type, size and where it came from (`[file "notes.txt" (text/plain, 41 bytes) from slack:F123]`),
or why it was not read. The bytes are never stored: every tier would hold a copy of them,
and the file stays where the user shared it. The model reads the file itself only during
the turn it came with (a text part for text, inline data for the rest, right after its
note): `AttachmentsPlugin` adds it to that turn's model requests. Later turns see the note.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from google.adk.agents.callback_context import CallbackContext
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.plugins.base_plugin import BasePlugin
from google.genai import types

TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/javascript",
        "application/x-ndjson",
        "application/sql",
    }
)
_NOTE = re.compile(
    r'\[file "(?P<name>[^"\n]*)" \((?P<mime_type>[^,\n]+), (?P<size>\d+) bytes\)'
    r"(?: from (?P<source>[^\s:\]]+(?::[^\s\]]+)?))?(?:: not read, (?P<refused>[^\]\n]*))?\]"
)
_UNSAFE = re.compile(r'["\n\r\t\]\[]')


def is_text(mime_type: str) -> bool:
    """Whether a file of `mime_type` is read as text (decoded as UTF-8)."""
    base = mime_type.split(";", 1)[0].strip().lower()
    return base.startswith("text/") or base in TEXT_TYPES or base.endswith(("+json", "+xml"))


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file of a message: its bytes (`data`), or why it was not read (`refused`)."""

    name: str
    mime_type: str
    size: int
    data: bytes | None = None
    source: str | None = None  # where it came from, e.g. "slack:F0123"
    refused: str | None = None  # e.g. "it is larger than the 10 MB limit"

    @property
    def note(self) -> str:
        """The line the session stores for this file (no bytes)."""
        name = _UNSAFE.sub("_", self.name) or "unnamed"
        mime_type = _UNSAFE.sub("_", self.mime_type).replace(",", "_") or "application/octet-stream"
        text = f'[file "{name}" ({mime_type}, {self.size} bytes)'
        if self.source:
            text += f" from {_UNSAFE.sub('_', self.source).replace(' ', '_')}"
        if self.refused is not None:
            text += f": not read, {_UNSAFE.sub(' ', self.refused)}"
        return text + "]"

    def content(self) -> list[types.Part]:
        """What the model reads: the text, or the bytes as inline data (nothing if refused)."""
        if self.data is None or self.refused is not None:
            return []
        if is_text(self.mime_type):
            return [types.Part(text=self.data.decode("utf-8", errors="replace"))]
        blob = types.Blob(mime_type=self.mime_type, data=self.data, display_name=self.name)
        return [types.Part(inline_data=blob)]


def parse_note(text: str | None) -> Attachment | None:
    """The attachment a stored note describes (without its bytes), or None if `text` is no note."""
    if not text:
        return None
    found = _NOTE.fullmatch(text.strip())
    if found is None:
        return None
    return Attachment(
        name=found["name"],
        mime_type=found["mime_type"],
        size=int(found["size"]),
        source=found["source"],
        refused=found["refused"],
    )


def stored_message(text: str, attachments: Sequence[Attachment] = ()) -> types.Content:
    """The user's message as the session stores it: the text, then one note per file."""
    parts = [types.Part(text=text)] if text or not attachments else []
    parts += [types.Part(text=a.note) for a in attachments]
    return types.Content(role="user", parts=parts)


class AttachmentsPlugin(BasePlugin):
    """Puts the files of a turn in flight into that turn's model requests, after their notes."""

    def __init__(self) -> None:
        super().__init__(name="ifriend_attachments")
        self._turns: dict[str, dict[str, list[types.Part]]] = {}

    @asynccontextmanager
    async def attached(self, invocation_id: str, attachments: Sequence[Attachment]) -> AsyncIterator[None]:
        """While inside, model requests of `invocation_id` read `attachments`."""
        contents = {a.note: parts for a in attachments if (parts := a.content())}
        if not contents:
            yield
            return
        self._turns[invocation_id] = contents
        try:
            yield
        finally:
            self._turns.pop(invocation_id, None)

    async def before_model_callback(
        self, *, callback_context: CallbackContext, llm_request: LlmRequest
    ) -> LlmResponse | None:
        files = self._turns.get(callback_context.invocation_id)
        if not files:
            return None
        pending = dict(files)
        # The newest user message holding a note gets its file (a file shared twice is read once).
        for index in range(len(llm_request.contents) - 1, -1, -1):
            content = llm_request.contents[index]
            if content.role != "user" or not content.parts:
                continue
            if not any(part.text in pending for part in content.parts):
                continue
            parts: list[types.Part] = []
            for part in content.parts:
                parts.append(part)
                extra = pending.pop(part.text, None) if part.text else None
                if extra:
                    parts.extend(extra)
            llm_request.contents[index] = types.Content(role=content.role, parts=parts)
            if not pending:
                break
        return None
