"""Which agent runs: the default assistant, `[app] agent`, and the model checks at start."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from google.adk.agents.base_agent import BaseAgent
from google.adk.agents.llm_agent import LlmAgent

from ifriend import App, Settings, load_settings
from ifriend.agent import build_agent, check_model, load_agent
from ifriend.errors import ConfigError

CREDENTIALS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT")


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def agent_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`write(source)` -> the name of a new importable module holding `source`."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = f"agent_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        return name

    yield write


def app_settings(**app: str) -> Settings:
    return Settings.model_validate({"app": app})


AGENTS = """
    from google.adk.agents.base_agent import BaseAgent
    from google.adk.agents.llm_agent import LlmAgent

    root_agent = LlmAgent(name="mine", model="ifriend-echo", instruction="be brief")

    def make_agent():
        return LlmAgent(name="made", model="ifriend-echo")

    class Quiet(BaseAgent):
        async def _run_async_impl(self, ctx):
            return
            yield

    quiet = Quiet(name="quiet")
    not_an_agent = 42

    def broken():
        raise RuntimeError("factory broke")

    class holder:
        agent = LlmAgent(name="nested", model="ifriend-echo")
"""


def test_the_default_is_the_assistant_on_the_local_model() -> None:
    agent = build_agent(Settings())
    assert isinstance(agent, LlmAgent)
    assert agent.name == "ifriend_assistant" and agent.model == "ifriend-echo"
    assert [t.__name__ for t in agent.tools] == ["get_current_time"]
    assert "get_current_time" in agent.instruction


def test_app_builds_the_agent_at_construction() -> None:
    assert App().agent.name == "ifriend_assistant"


@pytest.mark.parametrize(
    ("attribute", "name"),
    [("root_agent", "mine"), ("make_agent", "made"), ("quiet", "quiet"), ("holder.agent", "nested")],
)
def test_module_attribute_names_an_agent_or_a_factory(agent_module, attribute: str, name: str) -> None:
    module = agent_module(AGENTS)
    agent = build_agent(app_settings(agent=f"{module}:{attribute}"))
    assert isinstance(agent, BaseAgent) and agent.name == name


def test_the_agent_module_may_live_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.chdir(tmp_path)
    name = f"cwd_agent_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(AGENTS), encoding="utf-8")
    assert load_agent(f"{name}:root_agent").name == "mine"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon_here", "not a module:attribute reference"),
        (":root_agent", "not a module:attribute reference"),
        ("ifriend_no_such_module_x:agent", "cannot import module 'ifriend_no_such_module_x'"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:not_an_agent", "is of type 'int', not an agent"),
        ("{module}:broken", "calling broken() failed: RuntimeError: factory broke"),
    ],
)
def test_a_bad_agent_reference_is_a_config_error(agent_module, spec: str, message: str) -> None:
    spec = spec.format(module=agent_module(AGENTS))
    with pytest.raises(ConfigError) as info:
        App(app_settings(agent=spec))
    assert message in str(info.value)
    assert info.value.key == "app.agent"
    assert "expected: " in str(info.value)


def test_an_import_error_inside_the_module_is_reported(agent_module) -> None:
    module = agent_module("import ifriend_surely_missing_dependency\n")
    with pytest.raises(ConfigError) as info:
        build_agent(app_settings(agent=f"{module}:agent"))
    assert f"importing {module!r} failed: ModuleNotFoundError" in str(info.value)


def test_an_unknown_model_fails_at_start_listing_what_is_supported() -> None:
    with pytest.raises(ConfigError) as info:
        App(app_settings(model="ifriend-ecco"))
    message = str(info.value)
    assert "unknown model 'ifriend-ecco'" in message and "key: app.model" in message
    assert "ifriend-echo" in message and "gemini-" in message


def test_the_error_says_where_the_model_was_set() -> None:
    settings = load_settings(None, env={"IFRIEND__APP__MODEL": "nonsense-model"})
    with pytest.raises(ConfigError) as info:
        App(settings)
    assert "env:IFRIEND__APP__MODEL" in str(info.value)


def test_gemini_without_a_key_fails_at_start_naming_what_to_set() -> None:
    with pytest.raises(ConfigError) as info:
        App(app_settings(model="gemini-2.5-flash"))
    message = str(info.value)
    assert "'gemini-2.5-flash'" in message and "GOOGLE_API_KEY" in message
    assert "GOOGLE_GENAI_USE_VERTEXAI" in message and "GOOGLE_CLOUD_PROJECT" in message


@pytest.mark.parametrize(
    "environ",
    [
        {"GOOGLE_API_KEY": "k-not-used"},
        {"GEMINI_API_KEY": "k-not-used"},
        {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": "my-project"},
    ],
)
def test_gemini_with_credentials_builds_without_calling_it(environ: dict[str, str]) -> None:
    settings = app_settings(model="gemini-2.5-flash")
    agent = build_agent(settings, environ=environ)
    assert isinstance(agent, LlmAgent) and agent.model == "gemini-2.5-flash"


def test_vertex_without_a_project_is_refused() -> None:
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT is not"):
        check_model("gemini-2.5-flash", key="app.model", environ={"GOOGLE_GENAI_USE_VERTEXAI": "1"})


def test_the_models_of_a_configured_agent_are_checked(agent_module) -> None:
    module = agent_module(
        """
        from google.adk.agents.llm_agent import LlmAgent
        helper = LlmAgent(name="helper", model="gemini-2.5-flash")
        root_agent = LlmAgent(name="root", model="ifriend-echo", sub_agents=[helper])
        """
    )
    with pytest.raises(ConfigError) as info:
        App(app_settings(agent=f"{module}:root_agent"))
    assert "agent 'helper'" in str(info.value) and "GOOGLE_API_KEY" in str(info.value)


def test_model_and_agent_together_are_refused(agent_module) -> None:
    module = agent_module(AGENTS)
    with pytest.raises(ConfigError) as info:
        App(app_settings(agent=f"{module}:root_agent", model="ifriend-echo"))
    assert info.value.key == "app.model" and "your agent" in str(info.value)
