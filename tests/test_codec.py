"""Stored events decode to exactly what pydantic validation would give, only faster."""

from __future__ import annotations

import json
import string

import pytest

from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions, EventCompaction
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from ifriend.sessions.codec import decode_event, decode_events, encode_event


def rich_event() -> Event:
    return Event(
        author="model",
        invocation_id="inv-1",
        branch="root.child",
        long_running_tool_ids={"call-2", "call-1"},
        partial=False,
        turn_complete=True,
        finish_reason=types.FinishReason.STOP,
        error_code=None,
        interrupted=False,
        model_version="gemini-x",
        avg_logprobs=-0.5,
        custom_metadata={"nested": {"list": [1, 2.5, None, "x"]}, "flag": True},
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=10, candidates_token_count=5, total_token_count=15
        ),
        grounding_metadata=types.GroundingMetadata(web_search_queries=["q1", "q2"]),
        content=types.Content(
            role="model",
            parts=[
                types.Part(text="hello ünïcode 你好 🎉"),
                types.Part(
                    function_call=types.FunctionCall(id="call-1", name="lookup", args={"q": [1, {"a": None}]})
                ),
                types.Part(
                    function_response=types.FunctionResponse(
                        id="call-1", name="lookup", response={"result": {"rows": [[1, 2]]}}
                    )
                ),
                types.Part(inline_data=types.Blob(mime_type="image/png", data=bytes(range(256)))),
                types.Part(thought=True, text="thinking", thought_signature=b"\x00sig\xff"),
                types.Part(
                    executable_code=types.ExecutableCode(code="print(1)", language=types.Language.PYTHON)
                ),
            ],
        ),
        actions=EventActions(
            state_delta={"k": 1, "app:a": [1, 2], "user:u": {"x": None}},
            artifact_delta={"file.txt": 3},
            transfer_to_agent="other",
            escalate=True,
            skip_summarization=True,
            compaction=EventCompaction(
                start_timestamp=1.0,
                end_timestamp=2.0,
                compacted_content=types.Content(role="model", parts=[types.Part(text="summary")]),
            ),
        ),
    )


def fields_sets(value):
    """Every nested model's `model_fields_set`, which `==` on models does not compare."""
    if isinstance(value, BaseModel):
        return (value.model_fields_set, {k: fields_sets(v) for k, v in value.__dict__.items()})
    if isinstance(value, (list, tuple)):
        return [fields_sets(v) for v in value]
    if isinstance(value, dict):
        return {k: fields_sets(v) for k, v in value.items()}
    return None


def assert_decodes_as_validation(payload: bytes) -> Event:
    fast, validated = decode_event(payload), Event.model_validate_json(payload)
    assert fast == validated
    assert fields_sets(fast) == fields_sets(validated)
    assert encode_event(fast) == encode_event(validated)
    return fast


def test_rich_event_round_trips_equal_to_validation():
    event = rich_event()
    payload = encode_event(event)
    fast = decode_event(payload)
    assert fast == event
    assert fast == Event.model_validate_json(payload)
    assert isinstance(fast.long_running_tool_ids, set)
    assert fast.finish_reason is types.FinishReason.STOP
    assert fast.content.parts[3].inline_data.data == bytes(range(256))
    assert fast.get_function_calls()[0].args == {"q": [1, {"a": None}]}
    assert encode_event(fast) == payload
    assert_decodes_as_validation(payload)


def test_tool_confirmations_and_empty_collections_of_models():
    from google.adk.tools.tool_confirmation import ToolConfirmation

    confirmed = EventActions(requested_tool_confirmations={"call-1": ToolConfirmation(hint="ok?", payload={"a": 1})})
    for actions in (confirmed, EventActions(), EventActions(requested_tool_confirmations={})):
        fast = assert_decodes_as_validation(encode_event(Event(author="model", actions=actions)))
        assert fast.actions == actions
    assert isinstance(fast.actions.requested_tool_confirmations, dict)


def test_unknown_keys_get_what_pydantic_gives():
    # Event ignores keys it does not have; Part forbids them: pydantic's own error, not a KeyError.
    assert_decodes_as_validation(json.dumps({"author": "x", "id": "e1", "timestamp": 1.0, "unknownKey": 1}).encode())
    bad_part = json.dumps({"author": "x", "content": {"parts": [{"text": "a", "bogus": 1}]}})
    with pytest.raises(ValidationError, match="bogus"):
        Event.model_validate_json(bad_part)
    with pytest.raises(ValidationError, match="bogus"):
        decode_event(bad_part)
    # ADK's convenience keys (routed by Event's model validator) are not fields: validation routes them.
    routed = decode_event(json.dumps({"author": "x", "message": "hi", "state": {"a": 1}}))
    assert routed.content.parts[0].text == "hi" and routed.actions.state_delta == {"a": 1}


def test_an_event_without_id_gets_one_as_validation_gives():
    payload = json.dumps({"author": "x", "id": "", "timestamp": 1.0})
    fast, validated = decode_event(payload), Event.model_validate_json(payload)
    assert fast.id and fast.id != validated.id
    assert fast.model_fields_set == validated.model_fields_set == {"author", "id", "timestamp"}


def test_event_post_init_only_acts_on_an_event_without_id():
    # What lets the builder skip ADK's Event.model_post_init for events that have an id.
    event = decode_event(encode_event(rich_event()))
    before = (dict(event.__dict__), set(event.model_fields_set))
    event.model_post_init(None)
    assert (dict(event.__dict__), set(event.model_fields_set)) == before


def test_default_event_and_bulk_decoding():
    events = [Event(author="user"), rich_event(), Event(author="x", actions=EventActions())]
    assert decode_events([encode_event(e) for e in events]) == events
    assert decode_events([]) == []


@pytest.mark.filterwarnings("ignore:This method is deprecated:DeprecationWarning")
def test_auth_configs_take_the_validating_path():
    from google.adk.auth.auth_tool import AuthConfig
    from google.adk.auth.auth_credential import AuthCredential, AuthCredentialTypes
    from fastapi.openapi.models import APIKey, APIKeyIn

    config = AuthConfig(
        auth_scheme=APIKey(**{"in": APIKeyIn.header, "name": "X-Key"}),
        raw_auth_credential=AuthCredential(auth_type=AuthCredentialTypes.API_KEY, api_key="k"),
    )
    event = Event(author="model", actions=EventActions(requested_auth_configs={"call-1": config}))
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert isinstance(decoded.actions.requested_auth_configs["call-1"], AuthConfig)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(string.ascii_letters, max_size=5), inner, max_size=3),
    max_leaves=10,
)
parts = st.one_of(
    st.builds(types.Part, text=st.text(max_size=30)),
    st.builds(
        types.Part,
        function_call=st.builds(
            types.FunctionCall,
            name=st.text(string.ascii_letters, min_size=1, max_size=8),
            args=st.dictionaries(st.text(string.ascii_letters, max_size=5), json_values, max_size=3),
        ),
    ),
    st.builds(types.Part, inline_data=st.builds(types.Blob, mime_type=st.just("a/b"), data=st.binary(max_size=20))),
    st.builds(
        types.Part,
        function_response=st.builds(
            types.FunctionResponse,
            id=st.none() | st.text(max_size=4),
            name=st.text(string.ascii_letters, min_size=1, max_size=8),
            response=st.dictionaries(st.text(string.ascii_letters, max_size=5), json_values, max_size=3),
        ),
    ),
)
events = st.builds(
    Event,
    author=st.sampled_from(["user", "model", "tool"]),
    invocation_id=st.text(max_size=8),
    branch=st.none() | st.text(max_size=8),
    content=st.none() | st.builds(types.Content, role=st.sampled_from(["user", "model"]), parts=st.lists(parts, max_size=3)),
    actions=st.builds(
        EventActions,
        state_delta=st.dictionaries(st.text(max_size=6), json_values, max_size=3),
        escalate=st.none() | st.booleans(),
    ),
    custom_metadata=st.none() | st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    long_running_tool_ids=st.none() | st.sets(st.text(max_size=4), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(events)
def test_any_event_decodes_to_what_validation_gives(event):
    payload = encode_event(event)
    assert assert_decodes_as_validation(payload) == event


def test_integers_beyond_64_bits_still_decode():
    event = Event(author="x", custom_metadata={"big": 2**70, "neg": -(2**65)})
    assert decode_events([encode_event(event)])[0] == event
