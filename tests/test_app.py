"""The App's lifecycle: connect on enter, close everything on exit, even on error."""

from __future__ import annotations

import pytest
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.sessions.base_session_service import BaseSessionService

from ifriend import App, Settings, hookimpl
from ifriend_inprocess import InProcessSessionStore


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []


class RecordingStore(InProcessSessionStore):
    def __init__(self, recorder: Recorder, fail_connect: bool = False) -> None:
        super().__init__()
        self.recorder = recorder
        self.fail_connect = fail_connect

    async def connect(self) -> None:
        self.recorder.calls.append("session.connect")
        if self.fail_connect:
            raise ConnectionError("refused")

    async def close(self) -> None:
        self.recorder.calls.append("session.close")


def plugin(recorder: Recorder, *, fail_connect: bool = False):
    class P:
        @hookimpl
        def register_session_backends(self, register):
            register("rec", lambda context: RecordingStore(recorder, fail_connect))

    return P()


def app_with(recorder: Recorder, **kwargs) -> App:
    return App(Settings.model_validate({"session": {"backend": "rec"}}), plugins=[plugin(recorder, **kwargs)])


async def test_default_app_builds_adk_services():
    async with App() as app:
        assert isinstance(app.session_service, BaseSessionService)
        assert isinstance(app.memory_service, BaseMemoryService)


async def test_from_toml(tmp_path):
    path = tmp_path / "ifriend.toml"
    path.write_text('[app]\nname = "from-file"\n')
    async with App.from_toml(path, env={}) as app:
        assert app.settings.app.name == "from-file"


async def test_close_runs_on_error_inside_the_block():
    recorder = Recorder()
    with pytest.raises(RuntimeError):
        async with app_with(recorder):
            raise RuntimeError("boom")
    assert recorder.calls == ["session.connect", "session.close"]


async def test_failed_connect_propagates_and_leaves_nothing_open():
    recorder = Recorder()
    with pytest.raises(ConnectionError):
        async with app_with(recorder, fail_connect=True):
            pass
    assert recorder.calls == ["session.connect"]


async def test_services_usable_from_an_adk_runner():
    from google.adk.agents.base_agent import BaseAgent
    from google.adk.events.event import Event
    from google.adk.runners import Runner
    from google.genai import types

    class Parrot(BaseAgent):
        async def _run_async_impl(self, ctx):
            said = ctx.user_content.parts[0].text
            yield Event(
                author=self.name,
                invocation_id=ctx.invocation_id,
                content=types.Content(role="model", parts=[types.Part(text=f"you said {said}")]),
            )

    async with App() as app:
        runner = Runner(
            app_name="parrot",
            agent=Parrot(name="parrot"),
            session_service=app.session_service,
            memory_service=app.memory_service,
            auto_create_session=True,
        )
        for word in ("one", "two"):
            message = types.Content(role="user", parts=[types.Part(text=word)])
            async for _ in runner.run_async(user_id="u", session_id="s", new_message=message):
                pass
        session = await app.session_service.get_session(app_name="parrot", user_id="u", session_id="s")
        texts = [e.content.parts[0].text for e in session.events]
        assert texts == ["one", "you said one", "two", "you said two"]
