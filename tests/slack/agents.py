"""Agents for the Slack tests, named in `[app] agent` as `tests.slack.agents:NAME`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.invocation_context import InvocationContext
from google.adk.agents.llm_agent import LlmAgent
from google.adk.events.event import Event
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse

from ifriend.models import EchoModel


class ExplodingAgent(BaseAgent):
    """An agent whose every turn fails."""

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        raise RuntimeError("the agent exploded")
        yield  # pragma: no cover - makes this an async generator


exploding_agent = ExplodingAgent(name="exploding")


class PacedEcho(EchoModel):
    """`ifriend-echo` whose streamed chunks come a little apart, as a real model's do."""

    pause_seconds: float = 0.02

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        async for response in super().generate_content_async(llm_request, stream=stream):
            if response.partial:
                await asyncio.sleep(self.pause_seconds)
            yield response


paced_agent = LlmAgent(name="paced", model=PacedEcho(), instruction="Answer briefly.")
