"""The Slack Web API being away: telling it from other failures, and reporting it once.

When Slack cannot be reached (or answers 5xx), an event is still acked (a 500 would make Slack
retry it into a storm) and goes unanswered: the failure is counted in
`ifriend.slack.web_api_unavailable` (by `step`: `authorize`, `reply`) and logged on one line
with the trace id, at most once a minute per step.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable
from typing import TypeVar

from opentelemetry import trace

from ifriend.plugin_api import IfriendError, telemetry

from .throttled import ThrottledLog

log = logging.getLogger("ifriend_slack")
T = TypeVar("T")

WEB_API_UNAVAILABLE = "ifriend.slack.web_api_unavailable"


class Unreachable(IfriendError):
    """A Web API call failed because Slack could not be reached (the cause is chained)."""


def unreachable(exc: BaseException) -> bool:
    """Whether `exc`, raised by a Web API call, means Slack is away rather than refusing."""
    import aiohttp
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 0) or 0
        return status >= 500
    return isinstance(exc, aiohttp.ClientError | TimeoutError | ConnectionError)


async def delivering(call: Awaitable[T]) -> T:
    """Await a Web API call; if Slack is away, raise `Unreachable` from its error."""
    try:
        return await call
    except Exception as exc:
        if unreachable(exc):
            raise Unreachable(f"Slack Web API unreachable ({type(exc).__name__})") from exc
        raise


def current_trace_id() -> str:
    """The current trace's id, or a random token to find the log line by."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else secrets.token_hex(16)


class Reporter:
    """Counts and logs the events a channel left unanswered because Slack is away."""

    def __init__(self) -> None:
        self._lines = ThrottledLog(log)

    def report(self, step: str, exc: BaseException, *, trace_id: str | None = None) -> None:
        """Count an event left unanswered at `step`; log it (once a minute per step)."""
        cause = exc.__cause__ if isinstance(exc, Unreachable) and exc.__cause__ else exc
        telemetry.count(WEB_API_UNAVAILABLE, step=step, reason=type(cause).__name__)
        self._lines.log(
            logging.ERROR,
            step,
            "Slack Web API unreachable during %s (%s): event acked, not answered (trace_id=%s)",
            step,
            type(cause).__name__,
            trace_id or current_trace_id(),
        )
