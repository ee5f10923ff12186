"""The small assistant ifriend runs when `[app] agent` is not set."""

from __future__ import annotations

from datetime import UTC, datetime

from google.adk.agents.llm_agent import LlmAgent

from .models import ECHO_MODEL

INSTRUCTION = """\
You are ifriend, a friendly and concise assistant in a chat.
Answer in a few sentences. When the user asks for the time or the date,
call get_current_time instead of guessing."""


def get_current_time() -> str:
    """The current date and time in UTC, as `YYYY-MM-DD HH:MM:SS UTC`."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def build_assistant(model: str = ECHO_MODEL) -> LlmAgent:
    """The default assistant on `model` (a name ADK's LLM registry resolves)."""
    return LlmAgent(
        name="ifriend_assistant",
        model=model,
        description="A small assistant that can tell the time.",
        instruction=INSTRUCTION,
        tools=[get_current_time],
    )
