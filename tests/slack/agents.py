"""Agents for the Slack tests, named in `[app] agent` as `tests.slack.agents:NAME`."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.invocation_context import InvocationContext
from google.adk.events.event import Event


class ExplodingAgent(BaseAgent):
    """An agent whose every turn fails."""

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        raise RuntimeError("the agent exploded")
        yield  # pragma: no cover - makes this an async generator


exploding_agent = ExplodingAgent(name="exploding")
