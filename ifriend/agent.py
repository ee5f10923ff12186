"""The agent a deployment runs: `[app] agent`, or ifriend's small assistant on `[app] model`.

Everything is checked when the App is built, so a typo or a missing key stops
the bot at start, not at its first message. No model is called here.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Mapping

from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.registry import LLMRegistry

from .config import Settings
from .errors import ConfigError
from .models import ECHO_MODEL

SUPPORTED_MODELS = (
    f"{ECHO_MODEL} (local and offline), gemini-* (needs GOOGLE_API_KEY, or "
    "GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT), or another name ADK's "
    "model registry resolves when its package is installed (claude-*, provider/model via litellm)"
)
_AGENT_FORM = '"package.module:attribute", e.g. "my_bot.agent:root_agent"'
_TRUE = {"1", "true", "yes", "on"}


def build_agent(settings: Settings, *, environ: Mapping[str, str] | None = None) -> BaseAgent:
    """The root agent of `settings`, with every model name it uses checked.

    `[app] agent` names an agent (or a zero-argument factory of one) as
    `module:attribute`; without it, ifriend's assistant runs on `[app] model`
    (default `ifriend-echo`). Raises `ConfigError` naming the key to fix.
    """
    environ = os.environ if environ is None else environ
    app = settings.app
    if app.agent is None:
        model = app.model or ECHO_MODEL
        check_model(model, key="app.model", source=_origin(settings, "model"), environ=environ)
        from .assistant import build_assistant

        return build_assistant(model)
    if app.model is not None:
        raise ConfigError(
            "[app] model chooses the model of ifriend's own assistant, but [app] agent names "
            "your agent: set the model in your agent instead",
            source=_origin(settings, "model"),
            key="app.model",
            value=app.model,
            expected="no [app] model when [app] agent is set",
        )
    source = _origin(settings, "agent")
    agent = load_agent(app.agent, source=source)
    for llm_agent in _llm_agents(agent):
        if isinstance(llm_agent.model, str) and llm_agent.model:
            check_model(
                llm_agent.model,
                key=f"app.agent (agent {llm_agent.name!r})",
                source=source,
                environ=environ,
            )
    return agent


def load_agent(spec: str, *, source: str | None = None) -> BaseAgent:
    """Import `module:attribute` and return the agent it names (calling it if a factory).

    The working directory is importable, as for `uvicorn module:app`.
    """
    module_name, _, attribute = spec.partition(":")
    module_name, attribute = module_name.strip(), attribute.strip()
    if not module_name or not attribute:
        raise ConfigError(
            "[app] agent is not a module:attribute reference",
            source=source, key="app.agent", value=spec, expected=_AGENT_FORM,
        )
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise ConfigError(
                f"cannot import module {module_name!r} (not found from {os.getcwd()})",
                source=source, key="app.agent", value=spec, expected=_AGENT_FORM,
            ) from None
        raise _failed(spec, f"importing {module_name!r}", exc, source) from exc
    except Exception as exc:
        raise _failed(spec, f"importing {module_name!r}", exc, source) from exc
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise ConfigError(
                f"module {module_name!r} has no attribute {attribute!r}",
                source=source, key="app.agent", value=spec, expected=_AGENT_FORM,
            )
        found = getattr(found, part)
    if not isinstance(found, BaseAgent) and callable(found):
        try:
            found = found()
        except ConfigError:
            raise
        except Exception as exc:
            raise _failed(spec, f"calling {attribute}()", exc, source) from exc
    if not isinstance(found, BaseAgent):
        raise ConfigError(
            f"{spec} is of type {type(found).__name__!r}, not an agent",
            source=source,
            key="app.agent",
            value=spec,
            expected="an ADK agent (LlmAgent or any BaseAgent), or a zero-argument function "
            "returning one",
        )
    return found


def check_model(
    model: str, *, key: str, source: str | None = None, environ: Mapping[str, str] | None = None
) -> None:
    """Refuse a model name ADK cannot resolve, or a Gemini model without credentials."""
    environ = os.environ if environ is None else environ
    try:
        llm_class = LLMRegistry.resolve(model)
    except (ValueError, ImportError):
        raise ConfigError(
            f"unknown model {model!r}", source=source, key=key, value=model,
            expected=SUPPORTED_MODELS,
        ) from None
    from google.adk.models.google_llm import Gemini

    if issubclass(llm_class, Gemini):
        missing = _missing_gemini_credentials(environ)
        if missing:
            raise ConfigError(
                f"model {model!r} is served by Gemini, which needs credentials: {missing}",
                source=source,
                key=key,
                value=model,
                expected="GOOGLE_API_KEY set in the environment, or GOOGLE_GENAI_USE_VERTEXAI=true "
                f"with GOOGLE_CLOUD_PROJECT (and GOOGLE_CLOUD_LOCATION); or model = {ECHO_MODEL!r} "
                "to run offline",
            )


def describe_agent(agent: BaseAgent) -> str:
    """`name (model NAME)`, for banners and logs."""
    model = getattr(agent, "model", None)
    model_name = model if isinstance(model, str) else getattr(model, "model", None)
    return f"{agent.name} (model {model_name})" if model_name else agent.name


def _missing_gemini_credentials(environ: Mapping[str, str]) -> str | None:
    if environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").strip().lower() in _TRUE:
        if environ.get("GOOGLE_CLOUD_PROJECT") or environ.get("GOOGLE_API_KEY"):
            return None
        return "GOOGLE_GENAI_USE_VERTEXAI is set but GOOGLE_CLOUD_PROJECT is not"
    if environ.get("GOOGLE_API_KEY") or environ.get("GEMINI_API_KEY"):
        return None
    return "GOOGLE_API_KEY is not set"


def _llm_agents(agent: BaseAgent) -> Iterator[LlmAgent]:
    if isinstance(agent, LlmAgent):
        yield agent
    for sub in agent.sub_agents:
        yield from _llm_agents(sub)


def _origin(settings: Settings, key: str) -> str:
    where = settings.origin("app", key)
    return settings.source if where == "default" else where


def _failed(spec: str, step: str, exc: Exception, source: str | None) -> ConfigError:
    return ConfigError(
        f"[app] agent {spec}: {step} failed: {type(exc).__name__}: {exc}",
        source=source, key="app.agent", value=spec, expected=_AGENT_FORM,
    )
