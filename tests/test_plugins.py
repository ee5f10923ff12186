"""The plugin host: registration by name, clear failures at start."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ifriend import App, Settings, hookimpl
from ifriend.errors import DuplicateNameError, PluginError, UnknownNameError
from ifriend.plugins import build_plugin_manager, hook_names
from ifriend.sessions import SessionService
from ifriend_inprocess import InProcessSessionStore



class CountingStore(InProcessSessionStore):
    """An in-process session store that counts connects, to show the App drives the lifecycle."""

    name = "counting"

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self.connects = 0
        self.closes = 0

    async def connect(self) -> None:
        self.connects += 1

    async def close(self) -> None:
        self.closes += 1


class CountingPlugin:
    @hookimpl
    def register_session_backends(self, register):
        register("counting", lambda context: CountingStore(context.options.get("label", "none")))


def settings(**sections) -> Settings:
    return Settings.model_validate(sections)


async def test_a_test_plugin_adds_a_backend_selected_by_name():
    app = App(
        settings(session={"backend": "counting"}, backends={"counting": {"label": "hi"}}),
        plugins=[CountingPlugin()],
    )
    service = app.session_service
    assert isinstance(service, SessionService)
    store = service.store
    assert isinstance(store, CountingStore) and store.label == "hi"
    async with app:
        assert store.connects == 1
        created = await service.create_session(app_name="a", user_id="u")
        assert (await service.get_session(app_name="a", user_id="u", session_id=created.id)).id
    assert store.closes == 1


def test_unknown_backend_lists_known_names_and_their_plugins():
    with pytest.raises(UnknownNameError) as info:
        App(settings(session={"backend": "nosuch"}))
    message = str(info.value)
    assert "'nosuch'" in message and "memory (from memory)" in message


def test_duplicate_name_names_both_plugins():
    class Again:
        @hookimpl
        def register_session_backends(self, register):
            register("memory", lambda context: InProcessSessionStore())

    with pytest.raises(DuplicateNameError) as info:
        App(Settings(), plugins=[Again()])
    assert "'memory'" in str(info.value) and "registered twice" in str(info.value)


def test_misspelt_hook_fails_at_start():
    class Misspelt:
        @hookimpl
        def register_sesion_backends(self, register):
            pass

    with pytest.raises(PluginError) as info:
        App(Settings(), plugins=[Misspelt()])
    assert "register_sesion_backends" in str(info.value)
    assert "register_session_backends" in str(info.value)  # the known hooks are listed


def test_async_hook_is_refused_with_an_explanation():
    class Async:
        @hookimpl
        async def register_session_backends(self, register):
            pass

    with pytest.raises(PluginError, match="synchronous"):
        App(Settings(), plugins=[Async()])


def test_blocked_builtin_is_not_loaded():
    pm = build_plugin_manager(block=["memory"])
    assert pm.get_plugin("memory") is None and pm.is_blocked("memory")
    with pytest.raises(UnknownNameError) as info:
        App(settings(plugins={"block": ["memory"]}))
    assert "no session backend named 'memory'" in str(info.value)
    assert "(from memory)" not in str(info.value)


def test_builtins_come_from_entry_points():
    pm = build_plugin_manager()
    names = {dist.project_name for _, dist in pm.list_plugin_distinfo()}
    assert "ifriend" in names
    assert pm.get_plugin("memory") is not None


def test_a_factory_failure_names_backend_and_plugin():
    class Broken:
        @hookimpl
        def register_session_backends(self, register):
            register("broken", lambda context: 1 / 0)

    with pytest.raises(PluginError) as info:
        App(settings(session={"backend": "broken"}), plugins=[Broken()])
    assert "'broken'" in str(info.value) and "ZeroDivisionError" in str(info.value)


def test_a_factory_building_the_wrong_thing_is_refused():
    class Wrong:
        @hookimpl
        def register_session_backends(self, register):
            register("wrong", lambda context: object())

    with pytest.raises(PluginError, match="expected a SessionStore"):
        App(settings(session={"backend": "wrong"}), plugins=[Wrong()])


def test_every_hook_has_a_docstring():
    import ifriend.hookspecs as specs

    for name in hook_names():
        assert (getattr(specs, name).__doc__ or "").strip(), name
