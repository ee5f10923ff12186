"""The App: settings -> plugins -> services -> agent -> ADK Runner (`Conversations`) -> channels."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from google.adk.agents.base_agent import BaseAgent
from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.sessions.base_session_service import BaseSessionService
from pydantic import BaseModel

from .agent import build_agent
from .compaction import build_compaction
from .config import Settings, load_settings, parse_section
from .errors import ConfigError, PluginError
from .memory.auto import AutoMemory
from .memory.service import MemoryLimits, MemoryService
from .memory.store import MemoryStore
from .plugins import Registry, build_plugin_manager, collect
from .sessions.service import SessionService
from .sessions.store import SessionStore
from .sessions.validation import SessionLimits
from .telemetry.recorder import Recorder
from .telemetry.services import instrument_memory_service, instrument_session_service
from .telemetry.setup import start_telemetry

if TYPE_CHECKING:
    from .conversations import Conversations

M = TypeVar("M", bound=BaseModel)


@dataclass
class BackendContext:
    """What a backend factory is given: its own options and a way to build its peers."""

    name: str
    settings: Settings
    options: Mapping[str, Any]
    _store_of: Callable[[str], SessionStore] = field(repr=False)

    def parse(self, model: type[M]) -> M:
        """`options` validated against `model`; a `ConfigError` names `backends.NAME.key`."""
        return parse_section(model, self.options, key=f"backends.{self.name}", settings=self.settings)

    def session_store(self, name: str) -> SessionStore:
        """Build the store of another registered session backend (for compositions)."""
        return self._store_of(name)


@dataclass
class ChannelContext:
    """What a channel factory is given: its options, and the App whose conversations it serves.

    `options` is the `[channels.NAME]` table without `enabled` (the host reads that
    key). The channel uses `app.conversations` once serving (the App is entered then).
    """

    name: str
    settings: Settings
    options: Mapping[str, Any]
    app: App

    def parse(self, model: type[M]) -> M:
        """`options` validated against `model`; a `ConfigError` names `channels.NAME.key`."""
        return parse_section(model, self.options, key=f"channels.{self.name}", settings=self.settings)


@runtime_checkable
class Channel(Protocol):
    """What a channel factory builds: `serve()` runs until cancelled; `close()` is optional."""

    async def serve(self) -> None: ...


class Services:
    """The plugins and the ADK session and memory services `settings` choose.

    Built without I/O; their owner (the `App`, or `ifriend.adk` under ADK's own
    server) connects them with `open_services`.
    """

    def __init__(self, settings: Settings | None = None, *, plugins: Sequence[object] = ()) -> None:
        self.settings = settings or Settings()
        self.plugin_manager = build_plugin_manager(
            block=self.settings.plugins.block, extra=plugins
        )
        pm = self.plugin_manager
        self.session_backends = collect(pm, "register_session_backends", "session backend")
        self.memory_backends = collect(pm, "register_memory_backends", "memory backend")
        # Where these services' spans and metrics go: their own SDK while their owner runs
        # with `[telemetry]` (`start_telemetry`), else the global API.
        self.telemetry = Recorder()
        self.session_service: BaseSessionService = self._build_session_service()
        self.memory_service: BaseMemoryService = self._build_memory_service()

    async def open_services(self, stack: AsyncExitStack) -> None:
        """Connect the session service, then the memory service; `stack` closes them."""
        for service in (self.session_service, self.memory_service):
            if hasattr(service, "connect"):
                await service.connect()
            if hasattr(service, "close"):
                stack.push_async_callback(service.close)

    def _context(self, name: str) -> BackendContext:
        return BackendContext(
            name=name,
            settings=self.settings,
            options=self.settings.backends.get(name, {}),
            _store_of=self._build_store,
        )

    def _build_store(self, name: str) -> SessionStore:
        made = _call_factory(self.session_backends, name, self._context(name))
        if not isinstance(made, SessionStore):
            raise PluginError(
                f"session backend {name!r} did not build a SessionStore "
                f"(got {type(made).__name__}), so it cannot be composed"
            )
        return made

    def _build_session_service(self) -> BaseSessionService:
        name = self.settings.session.backend
        made = _call_factory(self.session_backends, name, self._context(name))
        if isinstance(made, BaseSessionService):
            if isinstance(made, SessionService):
                return made
            return instrument_session_service(made, backend=name, recorder=self.telemetry)
        if isinstance(made, SessionStore):
            s = self.settings.session
            limits = SessionLimits(s.max_id_length, s.max_event_bytes, s.max_state_value_bytes)
            return SessionService(made, backend=name, limits=limits, telemetry=self.telemetry)
        raise PluginError(
            f"session backend {name!r} built a {type(made).__name__}; expected a "
            "SessionStore or an ADK BaseSessionService"
        )

    def _build_memory_service(self) -> BaseMemoryService:
        name = self.settings.memory.backend
        made = _call_factory(self.memory_backends, name, self._context(name))
        if isinstance(made, MemoryStore):
            m = self.settings.memory
            limits = MemoryLimits(
                max_results=m.max_results,
                max_id_length=self.settings.session.max_id_length,
                max_entry_bytes=m.max_entry_bytes,
            )
            return MemoryService(made, backend=name, limits=limits, telemetry=self.telemetry)
        if not isinstance(made, BaseMemoryService):
            raise PluginError(
                f"memory backend {name!r} built a {type(made).__name__}; "
                "expected a MemoryStore or an ADK BaseMemoryService"
            )
        if isinstance(made, MemoryService):
            return made
        return instrument_memory_service(made, backend=name, recorder=self.telemetry)


class App(Services):
    """One ifriend deployment: `async with App.from_toml(path) as app: app.session_service`."""

    def __init__(self, settings: Settings | None = None, *, plugins: Sequence[object] = ()) -> None:
        super().__init__(settings, plugins=plugins)
        self.channels = collect(self.plugin_manager, "register_channels", "channel")
        self.agent: BaseAgent = build_agent(self.settings)
        self.compaction = build_compaction(self.settings, self.agent)
        self._conversations: Conversations | None = None
        self._auto_memory: AutoMemory | None = None
        self._stack: AsyncExitStack | None = None

    @classmethod
    def from_toml(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        plugins: Sequence[object] = (),
    ) -> App:
        """Load settings (see `ifriend.config`) and build the App."""
        return cls(load_settings(path, env=env), plugins=plugins)

    @property
    def conversations(self) -> Conversations:
        """The turns of the agent over this App's services; ready inside `async with app`."""
        if self._conversations is None:
            raise RuntimeError("app.conversations is ready only inside `async with app:`")
        return self._conversations

    def enabled_channels(self) -> list[str]:
        """Names of the `[channels.NAME]` tables whose `enabled` is not false, sorted."""
        enabled = []
        for name, table in sorted(self.settings.channels.items()):
            flag = table.get("enabled", True)
            if not isinstance(flag, bool):
                raise ConfigError(
                    "invalid setting",
                    source=_origin(self.settings, "channels", name, "enabled"),
                    key=f"channels.{name}.enabled",
                    value=flag,
                    expected="true or false",
                )
            if flag:
                enabled.append(name)
        return enabled

    def build_channel(self, name: str) -> Channel:
        """Build channel `name` from its `[channels.NAME]` options (no I/O until `serve()`)."""
        options = {k: v for k, v in self.settings.channels.get(name, {}).items() if k != "enabled"}
        context = ChannelContext(name=name, settings=self.settings, options=options, app=self)
        made = _call_factory(self.channels, name, context)
        if not isinstance(made, Channel):
            raise PluginError(
                f"channel {name!r} built a {type(made).__name__}, which has no serve() method"
            )
        return made

    async def __aenter__(self) -> App:
        from .conversations import Conversations

        async with AsyncExitStack() as stack:
            # The App's own SDK (if it exports) from here; exported and shut down on exit.
            stack.push_async_callback(start_telemetry(self.settings, self.telemetry).release)
            await self.open_services(stack)
            m = self.settings.memory
            auto = AutoMemory(
                mode=m.auto_add,
                app_name=self.settings.app.name,
                session_service=self.session_service,
                memory_service=self.memory_service,
                idle_close_seconds=m.idle_close_seconds,
            )
            stack.push_async_callback(self._forget_auto_memory)
            stack.push_async_callback(auto.close)  # before the services close
            self._auto_memory = auto
            conversations = Conversations(
                app_name=self.settings.app.name,
                agent=self.agent,
                session_service=self.session_service,
                memory_service=self.memory_service,
                after_turn=self.after_turn,
                telemetry=self.telemetry,
                compaction=self.compaction,
            )
            stack.push_async_callback(self._forget_conversations)
            stack.push_async_callback(conversations.close)
            self._conversations = conversations
            self._stack = stack.pop_all()
        return self

    async def _forget_conversations(self) -> None:
        self._conversations = None

    async def _forget_auto_memory(self) -> None:
        self._auto_memory = None

    def after_turn(self, *, user_id: str, session_id: str) -> None:
        """A turn's reply was sent: schedule `[memory] auto_add` (never waits; a no-op when off).

        `app.conversations` calls it; a channel running turns by other means should too.
        """
        if self._auto_memory is not None:
            self._auto_memory.after_turn(user_id=user_id, session_id=session_id)

    def end_session(self, *, user_id: str, session_id: str) -> None:
        """The conversation is over: with `auto_add = "on_close"`, add it to memory now."""
        if self._auto_memory is not None:
            self._auto_memory.end_session(user_id=user_id, session_id=session_id)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()


def _origin(settings: Settings, *path: str) -> str:
    where = settings.origin(*path)
    return settings.source if where == "default" else where


def _call_factory(registry: Registry, name: str, context: BackendContext | ChannelContext) -> Any:
    registration = registry.get(name)
    try:
        return registration.factory(context)
    except (PluginError, ConfigError):
        raise
    except Exception as exc:
        raise PluginError(
            f"{registry.kind} {name!r} (from plugin {registration.plugin!r}) failed to build: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
