"""The plugin host: one pluggy manager per App, and the registries hooks fill."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import DuplicateNameError, PluginError, UnknownNameError

ENTRY_POINT_GROUP = "ifriend"


def build_plugin_manager(
    *, block: Iterable[str] = (), extra: Iterable[object] = ()
) -> pluggy.PluginManager:
    """A fresh manager: entry-point plugins (built-ins included) minus `block`, plus `extra`.

    Raises `PluginError` if any plugin implements a hook that does not exist.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for name in block:
        pm.set_blocked(name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = ", ".join(sorted(hook_names()))
        raise PluginError(f"{exc}. Known hooks: {known}") from None
    return pm


def hook_names() -> list[str]:
    """Names of every hook in `ifriend.hookspecs`."""
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "ifriend_spec")
    ]


def plugin_origin(pm: pluggy.PluginManager, plugin: object) -> str:
    """Where a plugin comes from: `dist==version (entry point)` or its module."""
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            return f"{dist.project_name}=={dist.version}"
    return getattr(plugin, "__name__", None) or type(plugin).__module__


@dataclass(frozen=True, slots=True)
class Registration:
    """One name a plugin registered, and the factory behind it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str


class Registry:
    """Factories of one kind (session backends, channels...) by name."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Registration] = {}

    def add(self, name: str, factory: Callable[..., Any], *, plugin: str) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {self.kind} with no name")
        if not callable(factory):
            raise PluginError(f"plugin {plugin!r} registered {self.kind} {name!r} with no factory")
        if name in self._entries:
            first = self._entries[name].plugin
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by plugin {first!r} and by "
                f"plugin {plugin!r}. Block one of them in [plugins] block."
            )
        self._entries[name] = Registration(self.kind, name, factory, plugin)

    def get(self, name: str) -> Registration:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"no {self.kind} named {name!r}. Known: {self.describe() or 'none'}"
            ) from None

    def describe(self) -> str:
        return ", ".join(f"{r.name} (from {r.plugin})" for r in self)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Registration]:
        return iter(sorted(self._entries.values(), key=lambda r: r.name))


def collect(pm: pluggy.PluginManager, hook_name: str, kind: str) -> Registry:
    """Call one registering hook on every plugin, remembering which plugin gave each name."""
    registry = Registry(kind)
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        if inspect.iscoroutinefunction(impl.function):
            raise PluginError(
                f"plugin {impl.plugin_name!r} implements {hook_name} as 'async def'; hooks are "
                "synchronous: register a factory and do async work in the object it builds"
            )

        def register(name: str, factory: Callable[..., Any], _plugin: str = impl.plugin_name) -> None:
            registry.add(name, factory, plugin=_plugin)

        impl.function(**{arg: register for arg in impl.argnames})
    return registry
