"""The local `ifriend-echo` model: labelled, answers from history, calls tools, streams."""

from __future__ import annotations

from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.models.registry import LLMRegistry
from google.adk.tools.function_tool import FunctionTool
from google.genai import types

from ifriend.assistant import get_current_time
from ifriend.models import ECHO_MODEL, EchoModel
from ifriend.models.echo import LABEL


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def model_says(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(text=text)])


def request(*contents: types.Content, tools: list[FunctionTool] = ()) -> LlmRequest:
    made = LlmRequest(model=ECHO_MODEL, contents=list(contents))
    made.append_tools(list(tools))
    return made


async def generate(req: LlmRequest, *, stream: bool = False) -> list[LlmResponse]:
    return [r async for r in EchoModel().generate_content_async(req, stream=stream)]


def text_of(response: LlmResponse) -> str:
    return "".join(p.text or "" for p in response.content.parts)


def test_the_registry_resolves_the_name() -> None:
    llm = LLMRegistry.new_llm(ECHO_MODEL)
    assert isinstance(llm, EchoModel) and llm.model == ECHO_MODEL


async def test_every_answer_is_labelled_as_the_local_model() -> None:
    [answer] = await generate(request(user("hello")))
    assert text_of(answer).startswith("[ifriend-echo] ")
    assert answer.partial is False and answer.turn_complete is True
    assert answer.model_version == ECHO_MODEL


async def test_it_recalls_what_the_user_said_earlier() -> None:
    req = request(
        user("my name is Bob"),
        model_says(LABEL + "hi"),
        user("I like tea"),
        model_says(LABEL + "ok"),
        user("what is my name?"),
    )
    [answer] = await generate(req)
    text = text_of(answer)
    assert 'You said: "what is my name?"' in text
    assert 'Earlier you said: "I like tea"; your first message was "my name is Bob"' in text
    assert "2 earlier messages" in text


async def test_a_first_message_is_the_start_of_the_conversation() -> None:
    [answer] = await generate(request(user("hi")))
    assert "start of our conversation" in text_of(answer)


async def test_it_calls_a_tool_the_message_asks_for() -> None:
    req = request(user("What time is it?"), tools=[FunctionTool(get_current_time)])
    [call] = await generate(req, stream=True)
    [part] = call.content.parts
    assert part.function_call.name == "get_current_time" and part.function_call.args == {}
    assert call.partial is False


async def test_no_tool_no_call() -> None:
    [answer] = await generate(request(user("What time is it?")))
    assert answer.content.parts[0].function_call is None
    assert "What time is it?" in text_of(answer)


async def test_a_tool_with_required_arguments_is_not_called() -> None:
    def get_time_in(city: str) -> str:
        return city

    [answer] = await generate(request(user("time in Paris?"), tools=[FunctionTool(get_time_in)]))
    assert answer.content.parts[0].function_call is None


async def test_it_answers_with_the_tool_result() -> None:
    call = types.FunctionCall(id="c1", name="get_current_time", args={})
    result = types.FunctionResponse(
        id="c1", name="get_current_time", response={"result": "2030-01-02 03:04:05 UTC"}
    )
    req = request(
        user("what time is it"),
        types.Content(role="model", parts=[types.Part(function_call=call)]),
        types.Content(role="user", parts=[types.Part(function_response=result)]),
        tools=[FunctionTool(get_current_time)],
    )
    [answer] = await generate(req)
    assert text_of(answer) == (
        "[ifriend-echo] The tool get_current_time returned: 2030-01-02 03:04:05 UTC"
    )


async def test_streaming_yields_partials_then_the_whole_answer() -> None:
    req = request(user("tell me something long enough to stream in several chunks"))
    responses = await generate(req, stream=True)
    *partials, final = responses
    assert len(partials) >= 3
    assert all(r.partial is True for r in partials) and final.partial is False
    assert all(len(text_of(r).split()) <= 3 for r in partials)
    assert "".join(text_of(r) for r in partials) == text_of(final)
    [whole] = await generate(req, stream=False)
    assert text_of(whole) == text_of(final)


async def test_usage_is_reported_in_words() -> None:
    [answer] = await generate(request(user("one two three")))
    usage = answer.usage_metadata
    assert usage.prompt_token_count == 3
    assert usage.total_token_count == 3 + len(text_of(answer).split())
