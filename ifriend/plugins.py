"""The plugin host: one pluggy manager per App, the registries hooks fill, and the
plugin listing `ifriend plugins` prints."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import DuplicateNameError, PluginError, UnknownNameError

ENTRY_POINT_GROUP = "ifriend"
BUILTIN_DISTRIBUTION = "ifriend"

# Registering hook -> (kind as `collect` names it, key in `ifriend plugins --json`).
REGISTERING_HOOKS: dict[str, tuple[str, str]] = {
    "register_session_backends": ("session backend", "session_backends"),
    "register_memory_backends": ("memory backend", "memory_backends"),
    "register_channels": ("channel", "channels"),
}
REGISTRATION_KEYS = [key for _, key in REGISTERING_HOOKS.values()]


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


@dataclass
class PluginInfo:
    """One plugin as `ifriend plugins` shows it."""

    name: str
    origin: str
    installed: bool
    builtin: bool
    blocked: bool
    hooks: list[str]
    registers: dict[str, list[str]]


def describe_plugins(pm: pluggy.PluginManager, extra: Sequence[object] = ()) -> list[PluginInfo]:
    """Every plugin of `pm` (blocked ones too), sorted by name."""
    registered: dict[str, dict[str, list[str]]] = {}
    for hook, (kind, key) in REGISTERING_HOOKS.items():
        for registration in collect(pm, hook, kind):
            by_kind = registered.setdefault(registration.plugin, {})
            by_kind.setdefault(key, []).append(registration.name)
    distributions = {id(plugin): dist.project_name for plugin, dist in pm.list_plugin_distinfo()}
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            infos.append(_blocked_plugin(pm, name, extra))
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        infos.append(
            PluginInfo(
                name=name,
                origin=plugin_origin(pm, plugin),
                installed=True,
                builtin=_is_builtin(distributions.get(id(plugin))),
                blocked=False,
                hooks=hooks,
                registers={key: registered.get(name, {}).get(key, []) for key in REGISTRATION_KEYS},
            )
        )
    return sorted(infos, key=lambda i: i.name)


def _blocked_plugin(pm: pluggy.PluginManager, name: str, extra: Sequence[object]) -> PluginInfo:
    dist = next((ep.dist for ep in entry_points(group=ENTRY_POINT_GROUP, name=name) if ep.dist), None)
    injected = next((p for p in extra if pm.get_canonical_name(p) == name), None)
    if dist is not None:
        origin = f"{dist.name}=={dist.version}"
    elif injected is not None:
        origin = getattr(injected, "__name__", None) or type(injected).__module__
    else:
        origin = "not installed"
    return PluginInfo(
        name=name,
        origin=origin,
        installed=dist is not None or injected is not None,
        builtin=_is_builtin(dist.name if dist is not None else None),
        blocked=True,
        hooks=[],
        registers={key: [] for key in REGISTRATION_KEYS},
    )


def _is_builtin(distribution: str | None) -> bool:
    return distribution is not None and _normalize(distribution) == BUILTIN_DISTRIBUTION


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def format_plugins(infos: Sequence[PluginInfo]) -> str:
    """The plugins as text: origin, hooks and what each registers, or why it is not loaded."""
    if not infos:
        return "no plugins"
    lines = []
    for info in infos:
        tags = ["built-in" if info.builtin else "third-party"] if info.installed else []
        tags += ["blocked"] if info.blocked else []
        source = f"from {info.origin}" if info.installed else info.origin
        lines.append(f"{info.name}  ({', '.join([*tags, source])})")
        if info.blocked:
            lines.append("  blocked by [plugins] block: not loaded")
            continue
        lines.append(f"  hooks: {', '.join(info.hooks) or 'none'}")
        for key in REGISTRATION_KEYS:
            names = info.registers.get(key, [])
            lines.append(f"  {key.replace('_', ' ')}: {', '.join(names) or '-'}")
    return "\n".join(lines)
