"""ifriend.adk in process: URIs, ADK's registry, services shared, lazy, closed."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from google.adk.agents.llm_agent import LlmAgent
from google.adk.cli.service_registry import get_service_registry
from google.adk.cli.utils.service_factory import (
    create_memory_service_from_options,
    create_session_service_from_options,
)
from google.adk.runners import Runner
from google.genai import types

import ifriend.adk
from ifriend import App
from ifriend.adk import LazyMemoryService, LazySessionService, config_file, shared_services
from ifriend.errors import BackendUnavailableError, ConfigError, PluginError
from ifriend.memory.service import MemoryService
from ifriend.sessions.service import SessionService
from ifriend_tiered import TieredStore

from ..captured import last_span


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- URIs ----------------------------------------------------------------------------------


def test_an_absolute_uri_names_its_file(tmp_path: Path) -> None:
    assert config_file(f"ifriend://{tmp_path}/conf/ifriend.toml") == tmp_path / "conf/ifriend.toml"
    assert config_file("ifriend:///etc/my%20bot/ifriend.toml") == Path("/etc/my bot/ifriend.toml")


def test_a_relative_uri_is_read_from_the_working_directory(in_tmp: Path) -> None:
    write(in_tmp / "bot.toml", "")
    assert config_file("ifriend:bot.toml") == Path("bot.toml")
    assert shared_services("ifriend:bot.toml") is shared_services(f"ifriend://{in_tmp}/bot.toml")


def test_a_bare_uri_finds_the_file_as_ifriend_does(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(in_tmp / "ifriend.toml", "")
    assert config_file("ifriend://") == Path("ifriend.toml")
    assert config_file("ifriend:") == Path("ifriend.toml")
    monkeypatch.setenv("IFRIEND_CONFIG", str(in_tmp / "elsewhere.toml"))
    assert config_file("ifriend://") == in_tmp / "elsewhere.toml"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("ifriend://conf/ifriend.toml", "names the host 'conf'; write ifriend:conf/ifriend.toml"),
        ("ifriend:///x.toml?pool=3", "takes no query or fragment"),
        ("sqlite:///x.db", "the scheme is sqlite"),
        ("ifriend://", "IFRIEND_CONFIG is not set and there is no ifriend.toml"),
    ],
)
def test_a_bad_uri_is_an_error_naming_it_and_the_problem(in_tmp: Path, uri: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_file(uri)
    message = str(caught.value)
    assert f"bad ifriend service URI {uri!r}" in message
    assert problem in message


def test_a_bad_config_is_an_error_naming_the_uri(in_tmp: Path) -> None:
    missing = f"ifriend://{in_tmp}/missing.toml"
    with pytest.raises(ConfigError, match=f"ifriend service URI '{missing}': config file not found"):
        shared_services(missing)
    write(in_tmp / "bad.toml", '[session]\nbackend = "sqlite"\n')
    with pytest.raises(PluginError, match=r"ifriend service URI 'ifriend:bad.toml': no session backend named 'sqlite'"):
        shared_services("ifriend:bad.toml")
    write(in_tmp / "typo.toml", "[sesion]\n")
    with pytest.raises(ConfigError, match="ifriend service URI 'ifriend:typo.toml'.*sesion"):
        shared_services("ifriend:typo.toml")


# --- ADK's registry ----------------------------------------------------------------------------


def test_register_makes_adk_build_ifriend_services_from_ifriend_uris(in_tmp: Path) -> None:
    config = write(in_tmp / "ifriend.toml", "")
    ifriend.adk.register()
    uri = f"ifriend://{config}"
    sessions = create_session_service_from_options(base_dir=in_tmp, session_service_uri=uri)
    memory = create_memory_service_from_options(base_dir=in_tmp, memory_service_uri=uri)
    assert isinstance(sessions, LazySessionService)
    assert isinstance(memory, LazyMemoryService)
    # Both URIs name one file: one set of services, hence of connections.
    assert sessions.shared is memory.shared
    # The bare URI finds the same file.
    assert get_service_registry().create_session_service("ifriend://") is sessions


def test_a_bad_uri_fails_adk_instead_of_falling_back_to_another_store(in_tmp: Path) -> None:
    ifriend.adk.register()
    with pytest.raises(ConfigError, match="bad ifriend service URI 'ifriend://x/y.toml'"):
        create_session_service_from_options(base_dir=in_tmp, session_service_uri="ifriend://x/y.toml")


def test_building_installs_a_sigterm_handler_that_exits_cleanly(in_tmp: Path) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    shared_services(f"ifriend://{write(in_tmp / 'ifriend.toml', '')}")
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler)
    with pytest.raises(SystemExit) as caught:
        handler(signal.SIGTERM, None)
    assert caught.value.code == 128 + signal.SIGTERM


def test_a_handler_someone_installed_is_kept(in_tmp: Path) -> None:
    def theirs(signum: int, frame: object) -> None: ...

    signal.signal(signal.SIGTERM, theirs)
    shared_services(f"ifriend://{write(in_tmp / 'ifriend.toml', '')}")
    assert signal.getsignal(signal.SIGTERM) is theirs


# --- the same services as the App's, lazy, shared, closed -----------------------------------------


async def test_the_services_are_the_apps_and_connect_on_first_use(tiered_config: Path, spans) -> None:
    shared = shared_services(f"ifriend://{tiered_config}")
    sessions, memory = shared.session_service, shared.memory_service
    assert not shared.connected  # built without I/O
    assert isinstance(sessions.service, SessionService)
    assert isinstance(sessions.service.store, TieredStore)  # LRU -> Redis -> MySQL
    assert isinstance(memory.service, MemoryService)
    app = App.from_toml(tiered_config)
    assert type(app.session_service) is type(sessions.service)
    assert type(app.session_service.store) is type(sessions.service.store)
    assert app.session_service.limits == sessions.service.limits
    assert type(app.memory_service.store) is type(memory.service.store)

    created = await sessions.create_session(app_name="echo_agent", user_id="u1", session_id="s1")
    assert shared.connected
    assert last_span(spans, "ifriend.session.create_session").attributes["ifriend.backend"] == "tiered"
    found = await sessions.get_session(app_name="echo_agent", user_id="u1", session_id="s1")
    assert found is not None and found.id == created.id
    assert (await memory.search_memory(app_name="echo_agent", user_id="u1", query="x")).memories == []
    assert last_span(spans, "ifriend.memory.search_memory").attributes["ifriend.backend"] == "mysql"


async def test_a_server_down_fails_the_call_not_the_build(in_tmp: Path) -> None:
    config = write(
        in_tmp / "ifriend.toml",
        '[session]\nbackend = "redis"\n[backends.redis]\nurl = "redis://127.0.0.1:1/0"\ntimeout_seconds = 0.5\n',
    )
    sessions = shared_services(f"ifriend://{config}").session_service
    with pytest.raises(BackendUnavailableError):
        await sessions.create_session(app_name="a", user_id="u", session_id="s")
    assert not sessions.shared.connected  # the next call tries again


async def test_runners_share_the_services_and_connect_once(tiered_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = shared_services(f"ifriend://{tiered_config}")
    opened = 0
    open_services = shared.services.open_services

    async def counting(stack):  # type: ignore[no-untyped-def]
        nonlocal opened
        opened += 1
        await asyncio.sleep(0.05)  # every runner's first call arrives while connecting
        await open_services(stack)

    monkeypatch.setattr(shared.services, "open_services", counting)
    runners = [
        Runner(
            app_name="echo_agent",
            agent=LlmAgent(name=f"agent_{i}", model="ifriend-echo"),
            session_service=shared.session_service,
            memory_service=shared.memory_service,
            auto_create_session=True,
        )
        for i in range(3)
    ]

    async def turn(runner: Runner, user: str) -> str:
        text = ""
        message = types.Content(role="user", parts=[types.Part(text=f"hello from {user}")])
        async for event in runner.run_async(user_id=user, session_id=f"s-{user}", new_message=message):
            if event.content and event.content.parts:
                text += "".join(p.text or "" for p in event.content.parts)
        return text

    answers = await asyncio.gather(*(turn(r, f"u{i}") for i, r in enumerate(runners)))
    assert opened == 1
    assert all(a.startswith("[ifriend-echo]") for a in answers)
    for runner in runners:
        await runner.close()  # ADK closes each runner (flush) at shutdown: the services stay up
    assert shared.connected


async def test_close_closes_and_the_next_call_connects_again(tiered_config: Path) -> None:
    sessions = shared_services(f"ifriend://{tiered_config}").session_service
    await sessions.create_session(app_name="echo_agent", user_id="u1", session_id="s1")
    await ifriend.adk.close()
    assert not sessions.shared.connected
    assert await sessions.get_session(app_name="echo_agent", user_id="u1", session_id="s1") is not None
    assert sessions.shared.connected


def test_the_end_of_the_event_loop_closes_the_services(tiered_config: Path, caplog: pytest.LogCaptureFixture) -> None:
    sessions = shared_services(f"ifriend://{tiered_config}").session_service

    async def use() -> None:
        await sessions.create_session(app_name="echo_agent", user_id="u1", session_id="s1")

    caplog.set_level("INFO", logger="ifriend.adk")
    asyncio.run(use())  # as uvicorn runs the server: the loop's end cancels the closer
    assert not sessions.shared.connected
    assert "ifriend services closed" in caplog.text
    # A new loop (a server started again in the same process) connects again.
    assert asyncio.run(sessions.get_session(app_name="echo_agent", user_id="u1", session_id="s1")) is not None
