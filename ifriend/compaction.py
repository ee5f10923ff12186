"""`[app.compaction]` -> ADK's `EventsCompactionConfig` for the App's Runner.

ADK summarizes older turns into a compaction event that it appends to the session;
the next turns send the model the summaries plus the events after them. The session
store keeps every event (docs/compaction.md). Everything is checked when the App is
built: a summarizer model that cannot be resolved stops the bot at start.
"""

from __future__ import annotations

import warnings

from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.llm_agent import LlmAgent
from google.adk.apps.app import EventsCompactionConfig
from google.adk.apps.llm_event_summarizer import LlmEventSummarizer
from google.adk.models.base_llm import BaseLlm
from google.adk.models.registry import LLMRegistry

from .agent import check_model
from .config import Settings
from .errors import ConfigError


def build_compaction(settings: Settings, agent: BaseAgent) -> EventsCompactionConfig | None:
    """The compaction config of `settings` for `agent`'s Runner; None when it is off."""
    compaction = settings.app.compaction
    if not compaction.enabled:
        return None
    with warnings.catch_warnings():
        # ADK marks the feature experimental; enabling it in ifriend.toml is the opt-in.
        warnings.simplefilter("ignore", UserWarning)
        return EventsCompactionConfig(
            summarizer=LlmEventSummarizer(llm=_summarizer_model(settings, agent)),
            compaction_interval=compaction.interval,
            overlap_size=compaction.overlap,
            token_threshold=compaction.prompt_limit,
            event_retention_size=compaction.keep_events if compaction.prompt_limit is not None else None,
        )


def _summarizer_model(settings: Settings, agent: BaseAgent) -> BaseLlm:
    model = settings.app.compaction.model
    if model is not None:
        where = settings.origin("app", "compaction", "model")
        check_model(model, key="app.compaction.model", source=settings.source if where == "default" else where)
        return LLMRegistry.new_llm(model)
    if isinstance(agent, LlmAgent):
        return agent.canonical_model
    where = settings.origin("app", "compaction")
    raise ConfigError(
        f"[app.compaction] needs a summarizer model: the root agent {agent.name!r} is a "
        f"{type(agent).__name__}, not an LlmAgent whose model could summarize",
        source=settings.source if where == "default" else where,
        key="app.compaction.model",
        expected='a model name, e.g. model = "gemini-2.5-flash"',
    )
