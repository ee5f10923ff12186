"""`ifriend-echo`: a deterministic local model that answers from the conversation.

It exists so the bot runs offline and tests need no model service. It shows
that history reaches the model (it quotes what the user said earlier), that
files reach it (it names each attachment it received with the message, and
its size as received), calls a tool when the message asks for one, and
streams a few words at a time.
Every answer starts with `[ifriend-echo] ` so nobody mistakes it for Gemini.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.models._capabilities import LlmCapabilities
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types

from ..attachments import parse_note

ECHO_MODEL = "ifriend-echo"
LABEL = f"[{ECHO_MODEL}] "
WORDS_PER_CHUNK = 3
# Words of a tool's name that say nothing about what it is for.
_FILLER_WORDS = {"get", "set", "fetch", "current", "the", "a", "an", "of", "for", "now"}
_WORD = re.compile(r"[a-z0-9]+")


class EchoModel(BaseLlm):
    """A `BaseLlm` whose answers are a pure function of the request."""

    model: str = ECHO_MODEL

    @classmethod
    def supported_models(cls) -> list[str]:
        return [re.escape(ECHO_MODEL)]

    @property
    def capabilities(self) -> LlmCapabilities:
        return LlmCapabilities(output_schema_and_tools=False)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        """One model turn: a tool call, or a text answer (in chunks when `stream`)."""
        contents = list(llm_request.contents)
        last = contents[-1] if contents else None
        responses = _function_responses(last)
        if responses:
            text = LABEL + " ".join(_describe_result(r) for r in responses)
            yield _final(_text_content(text), contents)
            return
        latest = _latest_message(contents)
        current, attached = _read(latest) if latest is not None else ("", [])
        said = _user_texts(contents)
        earlier = said[:-1] if current else said
        tool = _tool_asked_for(current, llm_request)
        if tool is not None:
            call = types.FunctionCall(name=tool, args={})
            yield _final(types.Content(role="model", parts=[types.Part(function_call=call)]), contents)
            return
        text = LABEL + answer(current, earlier, attached)
        if stream:
            for chunk in _chunks(text):
                yield LlmResponse(content=_text_content(chunk), partial=True)
        yield _final(_text_content(text), contents)


def answer(current: str, earlier: list[str], attached: list[str] | None = None) -> str:
    """The echo's reply to `current`, given the user's `earlier` messages (oldest first)
    and the files that came with `current` (`notes.txt (text/plain, 41 bytes)`)."""
    reply = f'You said: "{current}".' if current else "You said nothing."
    if attached:
        names = attached[0] if len(attached) == 1 else ", ".join(attached[:-1]) + " and " + attached[-1]
        reply += f" You attached {names}."
    if len(earlier) == 1:
        reply += f' Earlier you said: "{earlier[0]}".'
    elif earlier:
        reply += (
            f' Earlier you said: "{earlier[-1]}"; your first message was "{earlier[0]}" '
            f"({len(earlier)} earlier messages in this conversation)."
        )
    else:
        reply += " This is the start of our conversation."
    return reply


def _final(content: types.Content, prompt: list[types.Content]) -> LlmResponse:
    """The turn's complete response, with words counted as tokens."""
    prompt_words, answer_words = _words(prompt), _words([content])
    usage = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=prompt_words,
        candidates_token_count=answer_words,
        total_token_count=prompt_words + answer_words,
    )
    return LlmResponse(
        content=content, partial=False, turn_complete=True, usage_metadata=usage,
        model_version=ECHO_MODEL,
    )


def _words(contents: list[types.Content]) -> int:
    return sum(
        len((part.text or "").split()) + (part.function_call is not None)
        for content in contents
        for part in content.parts or []
    )


def _text_content(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(text=text)])


def _chunks(text: str) -> list[str]:
    """`text` cut every few words; the chunks joined give `text` back."""
    pieces = re.findall(r"\s*\S+", text)
    return [
        "".join(pieces[i : i + WORDS_PER_CHUNK]) for i in range(0, len(pieces), WORDS_PER_CHUNK)
    ]


def _function_responses(content: types.Content | None) -> list[types.FunctionResponse]:
    if content is None or not content.parts:
        return []
    return [p.function_response for p in content.parts if p.function_response is not None]


def _user_texts(contents: list[types.Content]) -> list[str]:
    """The text of every user message, oldest first (tool results are not messages;
    file notes and file contents are not what the user said)."""
    texts = []
    for content in contents:
        if _is_message(content):
            text = _read(content)[0]
            if text:
                texts.append(text)
    return texts


def _is_message(content: types.Content) -> bool:
    return content.role == "user" and bool(content.parts) and not _function_responses(content)


def _latest_message(contents: list[types.Content]) -> types.Content | None:
    messages = [c for c in contents if _is_message(c)]
    return messages[-1] if messages else None


def _read(content: types.Content) -> tuple[str, list[str]]:
    """A user message's own text, and `name (type, N bytes)` of each file received with it
    (a file's note followed by its content; N counts the bytes that arrived)."""
    parts = [p for p in content.parts or [] if not p.thought]
    said: list[str] = []
    attached: list[str] = []
    i = 0
    while i < len(parts):
        note = parse_note(parts[i].text)
        if note is None:
            said.append(parts[i].text or "")
            i += 1
            continue
        following = parts[i + 1] if i + 1 < len(parts) else None
        size = _received(following) if note.refused is None and following is not None else None
        if size is None:
            i += 1
            continue
        attached.append(f"{note.name} ({note.mime_type}, {size} bytes)")
        i += 2
    return "".join(said).strip(), attached


def _received(part: types.Part) -> int | None:
    """The size of a file's content part, or None if `part` is no file content."""
    if part.inline_data is not None:
        return len(part.inline_data.data or b"")
    if part.text is not None and parse_note(part.text) is None:
        return len(part.text.encode("utf-8"))
    return None


def _describe_result(response: types.FunctionResponse) -> str:
    result: Any = response.response or {}
    if isinstance(result, dict) and set(result) == {"result"}:
        result = result["result"]
    shown = result if isinstance(result, str) else json.dumps(result, default=str, sort_keys=True)
    return f"The tool {response.name} returned: {shown}"


def _tool_asked_for(message: str, request: LlmRequest) -> str | None:
    """The first tool without required arguments whose name's key words are all in `message`."""
    words = set(_WORD.findall(message.lower()))
    for declaration in _declarations(request):
        name = declaration.name or ""
        if not name or _required_arguments(declaration):
            continue
        keys = set(_WORD.findall(name.lower().replace("_", " "))) - _FILLER_WORDS
        if name.lower() in message.lower() or (keys and keys <= words):
            return name
    return None


def _declarations(request: LlmRequest) -> list[types.FunctionDeclaration]:
    found = []
    for tool in request.config.tools or []:
        found.extend(getattr(tool, "function_declarations", None) or [])
    return found


def _required_arguments(declaration: types.FunctionDeclaration) -> list[str]:
    if declaration.parameters is not None:
        return list(declaration.parameters.required or [])
    schema = declaration.parameters_json_schema
    if isinstance(schema, dict):
        return list(schema.get("required") or [])
    return []
