"""Thumbs up / down under an answer, recorded against the turn that wrote it.

The buttons (a `context_actions` block with a `feedback_buttons` element) carry what is
needed to find the turn again: its trace and span ids, and the session (user and id). A click
becomes, without copying any message text:
- a span `ifriend.slack.feedback` linked to the turn's span, with a `feedback` event naming
  the rating and the turn's trace id, and a point of the counter `ifriend.slack.feedback`;
- an event in the session (author `user`, no content) whose `custom_metadata` holds
  `{"ifriend_feedback": {"rating", "trace_id", "message_ts", "by"}}`;
- an ephemeral thank-you to the person who clicked.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from google.adk.events.event import Event
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, TraceFlags

from ifriend.plugin_api import telemetry

log = logging.getLogger("ifriend_slack")

ACTION_ID = "ifriend_feedback"
FEEDBACK = "ifriend.slack.feedback"
METADATA_KEY = "ifriend_feedback"
RATINGS = ("positive", "negative")

_clicks = telemetry.meter.create_counter(FEEDBACK, unit="1", description="Feedback buttons clicked under Slack answers")


@dataclass(frozen=True, slots=True)
class TurnRef:
    """The turn an answer came from."""

    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits ("" when tracing is off)
    user: str  # the session's user
    session: str  # the session id


def blocks(turn: TurnRef) -> list[dict[str, Any]]:
    """The feedback buttons for an answer of `turn`."""

    def button(text: str, label: str, rating: str) -> dict[str, Any]:
        value = json.dumps(
            {"rating": rating, "trace": turn.trace_id, "span": turn.span_id, "user": turn.user, "session": turn.session},
            separators=(",", ":"),
        )
        return {"text": {"type": "plain_text", "text": text}, "accessibility_label": label, "value": value}

    return [
        {
            "type": "context_actions",
            "elements": [
                {
                    "type": "feedback_buttons",
                    "action_id": ACTION_ID,
                    "positive_button": button("Good answer", "Mark this answer as good", "positive"),
                    "negative_button": button("Bad answer", "Mark this answer as bad", "negative"),
                }
            ],
        }
    ]


@dataclass(frozen=True, slots=True)
class Click:
    """One click on a feedback button."""

    rating: str
    turn: TurnRef
    by: str  # who clicked
    team: str
    channel: str
    message_ts: str
    thread_ts: str | None

    @classmethod
    def parse(cls, body: Mapping[str, Any], action: Mapping[str, Any]) -> Click | None:
        """The click a `block_actions` payload carries, or None if it is not one of ours."""
        try:
            value = json.loads(action.get("value") or "")
            rating, trace_id, span_id = value["rating"], value["trace"], value.get("span") or ""
            user, session = value["user"], value["session"]
            channel = body["channel"]["id"]
            message = body.get("message") or {}
            message_ts = message.get("ts") or body["container"]["message_ts"]
        except (ValueError, KeyError, TypeError):
            return None
        if rating not in RATINGS or not all(isinstance(v, str) and v for v in (trace_id, user, session)):
            return None
        return cls(
            rating=rating,
            turn=TurnRef(trace_id=trace_id, span_id=span_id, user=user, session=session),
            by=str((body.get("user") or {}).get("id") or ""),
            team=str((body.get("team") or {}).get("id") or ""),
            channel=str(channel),
            message_ts=str(message_ts),
            thread_ts=message.get("thread_ts"),
        )

    def event(self) -> Event:
        """The session event that records the click (no message text)."""
        return Event(
            author="user",
            invocation_id=f"e-feedback-{uuid.uuid4()}",
            custom_metadata={
                METADATA_KEY: {
                    "rating": self.rating,
                    "trace_id": self.turn.trace_id,
                    "message_ts": self.message_ts,
                    "by": self.by,
                }
            },
        )


def record_span(click: Click) -> None:
    """The click in telemetry: a span linked to the turn's, its event, the counter."""
    attributes = {
        "ifriend.feedback.rating": click.rating,
        "ifriend.feedback.trace_id": click.turn.trace_id,
        "slack.team": click.team,
        "slack.channel": click.channel,
    }
    with telemetry.tracer.start_as_current_span(FEEDBACK, links=_links(click.turn), attributes=attributes) as span:
        span.add_event("feedback", {"rating": click.rating, "trace_id": click.turn.trace_id})
    _clicks.add(1, {"rating": click.rating})


def _links(turn: TurnRef) -> list[Link]:
    try:
        trace_id, span_id = int(turn.trace_id, 16), int(turn.span_id or "0", 16)
    except ValueError:
        return []
    context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return [Link(context)] if context.is_valid else []


def turn_ref(span: Any, *, user: str, session: str, fallback_trace_id: str) -> TurnRef:
    """The reference of the turn whose span is `span` (a random trace id without tracing)."""
    context = span.get_span_context() if span is not None else trace.INVALID_SPAN_CONTEXT
    if context.is_valid:
        return TurnRef(format(context.trace_id, "032x"), format(context.span_id, "016x"), user, session)
    return TurnRef(fallback_trace_id, "", user, session)
