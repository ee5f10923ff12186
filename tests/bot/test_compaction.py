"""`[app.compaction]`: ADK's events compaction through ifriend's App, on every session backend.

The agent and the summarizer are `ifriend-echo`, so the summary is a pure function of the
summarized turns: it quotes them, which is how the tests see what it kept.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.adk.agents.base_agent import BaseAgent
from google.adk.apps.llm_event_summarizer import LlmEventSummarizer
from google.adk.models.llm_request import LlmRequest

from ifriend import App, Settings
from ifriend.compaction import build_compaction
from ifriend.errors import ConfigError
from ifriend.models import EchoModel

from ..backends import RUN_ID, Suite

SUITE = Suite("session", redis_prefix=f"ifriend-compaction-{RUN_ID}", table_prefix=f"ifcp_{RUN_ID}_")
COMPACTION = {"enabled": True, "interval": 2, "overlap": 1}
FACT = "my locker code is 4711"
SUMMARIZER_PROMPT = "The following is a conversation history"


@pytest.fixture(scope="module", autouse=True)
def _drop_server_data() -> Iterator[None]:
    yield
    asyncio.run(SUITE.drop_server_data())


@pytest.fixture
def requests(monkeypatch: pytest.MonkeyPatch) -> list[LlmRequest]:
    """Every request `ifriend-echo` receives, the summarizer's included, in order."""
    seen: list[LlmRequest] = []
    original = EchoModel.generate_content_async

    def recording(self: EchoModel, llm_request: LlmRequest, stream: bool = False) -> Any:
        seen.append(llm_request.model_copy(deep=True))
        return original(self, llm_request, stream)

    monkeypatch.setattr(EchoModel, "generate_content_async", recording)
    return seen


def texts(request: LlmRequest) -> list[tuple[str, str]]:
    """(role, text) of every content of a request."""
    return [
        (content.role or "", "".join(p.text or "" for p in content.parts or []))
        for content in request.contents
    ]


def is_summarizer(request: LlmRequest) -> bool:
    return any(text.startswith(SUMMARIZER_PROMPT) for _, text in texts(request))


async def say(app: App, session_id: str, text: str) -> str:
    replies = [r async for r in app.conversations.turn(user_id="u", session_id=session_id, text=text)]
    return replies[-1].text


@pytest.mark.parametrize("backend", SUITE.params())
async def test_recall_survives_compaction_and_a_reload(backend: str, requests: list[LlmRequest]) -> None:
    spec = SUITE.require(backend)
    app_name = f"compaction-{uuid.uuid4().hex[:10]}"
    settings = spec.build(app={"name": app_name, "compaction": COMPACTION})
    session_id = "s"
    async with App(settings) as app:
        await say(app, session_id, FACT)
        assert not any(is_summarizer(r) for r in requests)
        await say(app, session_id, "what a nice day")  # the second turn: turns 1-2 are summarized
        summarizer_calls = [r for r in requests if is_summarizer(r)]
        assert len(summarizer_calls) == 1
        assert FACT in summarizer_calls[0].contents[0].parts[0].text

    # A new App (a new process: nothing cached) reads the summary back from the store.
    requests.clear()
    reloaded = settings if backend != "memory" else None
    async with App(reloaded or settings) as app:
        if reloaded is None:  # the memory backend keeps nothing across Apps: replay there
            await say(app, session_id, FACT)
            await say(app, session_id, "what a nice day")
            requests.clear()
        session = await app.session_service.get_session(app_name=app_name, user_id="u", session_id=session_id)
        compactions = [e for e in session.events if e.actions.compaction is not None]
        assert len(compactions) == 1 and len(session.events) == 5  # 2 turns of 2 events + 1 summary
        summary = compactions[0].actions.compaction
        assert FACT in summary.compacted_content.parts[0].text
        assert (summary.start_timestamp, summary.end_timestamp) == (
            session.events[0].timestamp,
            session.events[3].timestamp,
        )

        answer = await say(app, session_id, "what was my locker code?")

        (request,) = [r for r in requests if not is_summarizer(r)]
        contents = texts(request)
        assert contents[-1] == ("user", "what was my locker code?")
        # The early turns reach the model only through the summary, which still holds the fact.
        assert ("user", FACT) not in contents and ("user", "what a nice day") not in contents
        assert [role for role, text in contents if FACT in text] == ["model"]
        assert "This is the start of our conversation" in answer  # echo saw no earlier user message
        await app.session_service.delete_session(app_name=app_name, user_id="u", session_id=session_id)


async def test_compaction_is_off_by_default(requests: list[LlmRequest]) -> None:
    async with App() as app:
        assert app.compaction is None
        for text in (FACT, "two", "three", "four"):
            await say(app, "s", text)
    assert not any(is_summarizer(r) for r in requests)
    assert ("user", FACT) in texts(requests[-1])


def test_settings_from_the_file_and_the_environment(tmp_path) -> None:
    path = tmp_path / "ifriend.toml"
    path.write_text("[app.compaction]\nenabled = true\ninterval = 6\n", encoding="utf-8")
    env = {"IFRIEND__APP__COMPACTION__OVERLAP": "2", "IFRIEND__APP__COMPACTION__PROMPT_LIMIT": "8000"}
    config = App.from_toml(path, env=env).compaction
    assert config is not None
    assert (config.compaction_interval, config.overlap_size) == (6, 2)
    assert (config.token_threshold, config.event_retention_size) == (8000, 10)
    assert isinstance(config.summarizer, LlmEventSummarizer)
    off = App.from_toml(path, env={"IFRIEND__APP__COMPACTION__ENABLED": "false"})
    assert off.compaction is None


def test_the_summarizer_uses_the_apps_model_unless_configured() -> None:
    default = App(Settings.model_validate({"app": {"compaction": {"enabled": True}}}))
    assert default.compaction.summarizer._llm is default.agent.canonical_model
    assert default.compaction.token_threshold is None  # no token trigger unless asked
    own = App(Settings.model_validate({"app": {"compaction": {"enabled": True, "model": "ifriend-echo"}}}))
    assert isinstance(own.compaction.summarizer._llm, EchoModel)
    assert own.compaction.summarizer._llm is not own.agent.canonical_model


def test_an_unknown_summarizer_model_fails_at_start() -> None:
    settings = Settings.model_validate({"app": {"compaction": {"enabled": True, "model": "ifriend-ecco"}}})
    with pytest.raises(ConfigError) as info:
        App(settings)
    assert info.value.key == "app.compaction.model" and "unknown model 'ifriend-ecco'" in str(info.value)


class Scripted(BaseAgent):
    async def _run_async_impl(self, ctx):  # pragma: no cover - never run
        return
        yield


def test_an_agent_without_a_model_needs_a_summarizer_model() -> None:
    with pytest.raises(ConfigError) as info:
        build_compaction(Settings.model_validate({"app": {"compaction": {"enabled": True}}}), Scripted(name="scripted"))
    assert info.value.key == "app.compaction.model" and "'scripted' is a Scripted" in str(info.value)
    settings = Settings.model_validate({"app": {"compaction": {"enabled": True, "model": "ifriend-echo"}}})
    assert build_compaction(settings, Scripted(name="scripted")) is not None
