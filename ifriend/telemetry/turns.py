"""The span of one chat turn (`ifriend.turn`), under which ADK's spans and the session spans nest.

It follows the GenAI agent conventions where they apply: `gen_ai.operation.name`
(`invoke_agent`), `gen_ai.agent.name`, and `gen_ai.conversation.id` (the session id,
hashed as user ids are). ADK's `invoke_workflow` / `invoke_agent` spans are its children.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, Status, StatusCode

from .names import CHANNEL, ERROR_TYPE, GEN_AI_AGENT, GEN_AI_CONVERSATION, GEN_AI_OPERATION, OUTCOME, USER_ID
from .privacy import conversation_id_attribute, user_id_attribute
from .recorder import Recorder, _turn, current_recorder

logger = logging.getLogger("ifriend.telemetry")
T = TypeVar("T")
TURN = "ifriend.turn"


class Turn:
    """The `ifriend.turn` span of one chat turn; `acked()` and `replied()` mark its progress."""

    def __init__(self, recorder: Recorder, channel: str, attributes: dict[str, Any], start: float | None) -> None:
        self.recorder = recorder
        self.channel = channel
        self.attributes = attributes
        self.start = time.monotonic() if start is None else start
        self.span: Span = INVALID_SPAN
        self.time_to_ack: float | None = None
        self.time_to_first_reply: float | None = None
        self.retries = 0
        self.outcome = "ok"

    def acked(self, at: float | None = None) -> None:
        """The channel acknowledged the message (e.g. answered Slack's HTTP request), now
        or at `time.monotonic()` value `at`."""
        if self.time_to_ack is None:
            at = time.monotonic() if at is None else at
            self.time_to_ack = max(0.0, at - self.start)
            self.span.set_attribute("ifriend.turn.time_to_ack_s", self.time_to_ack)
            self.span.add_event("ack", timestamp=time.time_ns() - int((time.monotonic() - at) * 1e9))

    def replied(self) -> None:
        """A reply (or the first part of one) was shown to the user."""
        if self.time_to_first_reply is None:
            self.time_to_first_reply = time.monotonic() - self.start
            self.span.set_attribute("ifriend.turn.time_to_first_reply_s", self.time_to_first_reply)
            self.span.add_event("first_reply")

    def retried(self) -> None:
        """The turn ran again (it lost a race with another writer)."""
        self.retries += 1
        self.span.set_attribute("ifriend.turn.retries", self.retries)

    def failed(self, exc: BaseException) -> None:
        """The turn failed with `exc` (handled by the channel): its type, never its message."""
        self.outcome = "error"
        self.span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
        self.span.set_attribute(OUTCOME, "error")
        self.span.set_status(Status(StatusCode.ERROR))

    def agent(self, *, name: str, session_id: str) -> None:
        """The agent this turn invokes and the conversation (session) it belongs to."""
        self.span.set_attributes(
            {GEN_AI_AGENT: name, GEN_AI_CONVERSATION: conversation_id_attribute(session_id)}
        )

    def set_attribute(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)

    @property
    def trace_id(self) -> str | None:
        context = self.span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None


@contextmanager
def turn(
    channel: str,
    *,
    user_id: str | None = None,
    start: float | None = None,
    attributes: Mapping[str, Any] | None = None,
    recorder: Recorder | None = None,
) -> Iterator[Turn]:
    """The span of one chat turn, current while the turn runs.

    `start` is the `time.monotonic()` at which the message arrived, if earlier than
    now. Inside a turn already in flight (a channel's turn around
    `Conversations.turn`), this yields that turn and opens no new span. A failure is
    logged with the trace id and its exception type (never its message). The turn is
    recorded by `recorder` (an App's), else by `current_recorder()`.
    """
    outer = _turn.get()
    if outer is not None:
        yield outer
        return
    recorder = recorder or current_recorder()
    attrs: dict[str, Any] = {CHANNEL: channel, GEN_AI_OPERATION: "invoke_agent", **(attributes or {})}
    if user_id is not None:
        attrs[USER_ID] = user_id_attribute(user_id)
    current = Turn(recorder, channel, attrs, start)
    start_ns = time.time_ns() - int((time.monotonic() - current.start) * 1e9)
    span = current.span = recorder.start_span(TURN, attributes=attrs, start_time=start_ns)
    token = _turn.set(current)
    context_token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield current
    except GeneratorExit:
        current.outcome = "closed"
        span.set_attribute(OUTCOME, "closed")
        raise
    except BaseException as exc:
        current.failed(exc)
        logger.error("%s turn failed: %s (trace_id=%s)", channel, type(exc).__qualname__, current.trace_id or "-")
        raise
    finally:
        total = time.monotonic() - current.start
        span.set_attribute("ifriend.turn.duration_s", total)
        span.end()
        labels = {CHANNEL: channel, OUTCOME: current.outcome}
        recorder.record(recorder.turn_duration, total, labels)
        if current.time_to_first_reply is not None:
            recorder.record(recorder.turn_first_reply, current.time_to_first_reply, labels)
        otel_context.detach(context_token)
        try:
            _turn.reset(token)
        except ValueError:  # closed from another context (an abandoned async generator)
            pass


def current_turn() -> Turn | None:
    """The chat turn in flight in this task, if any."""
    return _turn.get()


def turn_failed(exc: BaseException) -> None:
    """Mark the turn in flight failed by `exc`, which the channel handled (an apology was
    shown): its span records the error type, and the trace id is logged with it."""
    current = _turn.get()
    if current is None:
        return
    current.failed(exc)
    logger.error(
        "%s turn failed: %s (trace_id=%s)", current.channel, type(exc).__qualname__, current.trace_id or "-"
    )


def turn_retried() -> None:
    """Count a re-run of the turn in flight (it lost a race with another writer)."""
    current = _turn.get()
    if current is not None:
        current.retried()


def traced_turn(method: Callable[..., AsyncIterator[T]]) -> Callable[..., AsyncIterator[T]]:
    """Run an async-generator method that yields a turn's replies (given `user_id=` and
    `session_id=`) in a `turn()` recorded by `self.telemetry` (a `Recorder`, if it has
    one) and naming `self.agent_name`: the first item yielded marks the first reply."""

    @functools.wraps(method)
    async def traced(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[T]:
        user_id = kwargs.get("user_id")
        session_id = kwargs.get("session_id")
        recorder = getattr(self, "telemetry", None)
        with turn(
            "direct", user_id=user_id if isinstance(user_id, str) else None, recorder=recorder
        ) as current:
            agent_name = getattr(self, "agent_name", None)
            if isinstance(agent_name, str) and isinstance(session_id, str):
                current.agent(name=agent_name, session_id=session_id)
            replies = method(self, *args, **kwargs)
            try:
                async for item in replies:
                    current.replied()
                    yield item
            finally:
                await replies.aclose()

    return traced
