"""ifriend's session and memory services under ADK's own server (`adk web`, `adk api_server`,
`adk deploy cloud_run`).

An agents folder holds a `services.py` (`ifriend adk init AGENTS_DIR` writes it)::

    from ifriend.adk import register
    register()

and `--session_service_uri` / `--memory_service_uri` name an `ifriend.toml`:
`ifriend:///abs/path/ifriend.toml`, `ifriend:relative/path.toml` (from the working
directory), or `ifriend://` (`IFRIEND_CONFIG`, else `./ifriend.toml`).

ADK builds its services synchronously, before its event loop runs. These are built
by the same code as the `App`'s (same stores, LRU and spans), connect on first use,
are shared by every runner, and close when the server's event loop ends (or on
`await ifriend.adk.close()`). Both URIs naming one file share one set of connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from google.adk.events.event import Event
from google.adk.memory.base_memory_service import BaseMemoryService, SearchMemoryResponse
from google.adk.memory.memory_entry import MemoryEntry
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session

from .app import Services
from .config import Settings, find_config_file, load_settings
from .errors import ConfigError, IfriendError
from .telemetry.setup import TelemetryLease, start_telemetry

SCHEME = "ifriend"
SERVICES_PY = "from ifriend.adk import register\nregister()\n"
URI_FORMS = "ifriend:///abs/path/ifriend.toml, ifriend:relative/path.toml or ifriend://"

log = logging.getLogger("ifriend.adk")

_shared: dict[str, SharedServices] = {}
_shared_lock = threading.Lock()


def register() -> None:
    """Register the `ifriend` scheme with ADK's service registry (sessions and memory).

    Also registers ifriend's models (`ifriend-echo`) with ADK's model registry.
    """
    from google.adk.cli.service_registry import get_service_registry

    from . import models  # noqa: F401  (registers ifriend-echo)

    registry = get_service_registry()
    registry.register_session_service(SCHEME, session_service_factory)
    registry.register_memory_service(SCHEME, memory_service_factory)


def session_service_factory(uri: str, **kwargs: Any) -> BaseSessionService:
    """ADK's factory for `--session_service_uri ifriend:...` (no I/O)."""
    ignored = sorted(k for k in kwargs if k != "agents_dir")
    if ignored:
        log.warning("ifriend session service: ignoring ADK options %s", ", ".join(ignored))
    return shared_services(uri).session_service


def memory_service_factory(uri: str, **kwargs: Any) -> BaseMemoryService:
    """ADK's factory for `--memory_service_uri ifriend:...` (no I/O)."""
    return shared_services(uri).memory_service


def write_services_py(agents_dir: Path) -> tuple[Path, bool]:
    """Write `agents_dir/services.py` registering the scheme; (its path, whether written).

    A `services.py` that already calls `ifriend.adk.register()` is left alone; any other
    is never overwritten (`IfriendError` saying what to add to it).
    """
    path = agents_dir / "services.py"
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        path.write_text(SERVICES_PY, encoding="utf-8")
        return path, True
    except (OSError, UnicodeDecodeError) as exc:
        raise IfriendError(f"cannot read {path}: {exc}") from None
    lines = {line.strip() for line in existing.splitlines()}
    if {"from ifriend.adk import register", "register()"} <= lines:
        return path, False
    raise IfriendError(
        f"{path} exists and does not register ifriend; not overwritten. "
        f"Add these two lines to it:\n{SERVICES_PY}"
    )


def uri_of(config: Path) -> str:
    """The `ifriend:///...` URI naming `config` by its absolute path."""
    return f"{SCHEME}://{quote(str(config.resolve()))}"


def server_commands(agents_dir: str, config: str | os.PathLike[str] | None = None) -> str:
    """The `adk web` and `adk api_server` commands on ifriend's services, ready to copy."""
    found = Path(config) if config is not None else find_config_file(None, os.environ)
    uri = uri_of(found) if found is not None else f"{SCHEME}:///path/to/ifriend.toml"
    options = f"--session_service_uri {uri} --memory_service_uri {uri}"
    return "\n".join(
        [
            "Develop with the web UI, or serve the API:",
            f"  adk web {agents_dir} {options}",
            f"  adk api_server {agents_dir} {options}",
        ]
    )


def config_file(uri: str, *, env: Mapping[str, str] | None = None) -> Path:
    """The settings file an `ifriend:` URI names; `ConfigError` naming the URI if none."""
    env = os.environ if env is None else env
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise _uri_error(uri, f"not a URI ({exc})") from None
    if parts.scheme != SCHEME:
        raise _uri_error(uri, f"the scheme is {parts.scheme or 'missing'}, not {SCHEME}")
    if parts.query or parts.fragment:
        raise _uri_error(uri, "an ifriend URI takes no query or fragment")
    if parts.netloc:
        raise _uri_error(
            uri,
            f"it names the host {parts.netloc!r}; write ifriend:{parts.netloc}{parts.path} "
            f"for a path relative to the working directory, ifriend:///... for an absolute one",
        )
    path = unquote(parts.path)
    if path:
        return Path(path)
    found = find_config_file(None, env)
    if found is None:
        raise _uri_error(
            uri,
            f"IFRIEND_CONFIG is not set and there is no ifriend.toml in {os.getcwd()}; "
            "name the file in the URI or set IFRIEND_CONFIG",
        )
    return found


def shared_services(uri: str) -> SharedServices:
    """The services of the file `uri` names, built on the first call for that file."""
    path = config_file(uri)
    key = str(path.resolve())
    with _shared_lock:
        found = _shared.get(key)
        if found is None:
            try:
                found = SharedServices(load_settings(path), uri=uri)
            except IfriendError as exc:
                raise type(exc)(f"ifriend service URI {uri!r}: {exc}") from None
            _shared[key] = found
            _exit_on_sigterm()
        return found


async def close() -> None:
    """Close every service ADK built from an `ifriend:` URI (they reconnect if used again)."""
    for shared in list(_shared.values()):
        await shared.close()


def _exit_on_sigterm() -> None:
    """Make SIGTERM (how Cloud Run and Kubernetes stop a container) raise `SystemExit`
    rather than kill the process, so that the end of the event loop closes the services
    and flushes telemetry. uvicorn stops gracefully first, then raises the signal again
    with the handler it found. Only where SIGTERM has no handler yet (main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _uri_error(uri: str, problem: str) -> ConfigError:
    return ConfigError(f"bad ifriend service URI {uri!r}: {problem}", expected=URI_FORMS)


class SharedServices:
    """One settings file's `Services`, connected on first use in the running event loop.

    The connections belong to that loop: a task waits on it and closes them when the
    loop ends (`asyncio.run`, as uvicorn uses, cancels it then). Used from a new loop
    after the old one ended, they connect again.
    """

    def __init__(self, settings: Settings, *, uri: str) -> None:
        self.uri = uri
        self.services = Services(settings)
        self.session_service = LazySessionService(self)
        self.memory_service = LazyMemoryService(self)
        # Now, before ADK sets up its own tracer provider: ADK then adds its span
        # processors to ifriend's (when [telemetry] installs one) instead of replacing it.
        self._telemetry: TelemetryLease | None = start_telemetry(settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._stack: AsyncExitStack | None = None
        self._closer: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._stack is not None

    async def ready(self) -> Services:
        """The services, connected (once per loop; concurrent first callers wait for it)."""
        loop = asyncio.get_running_loop()
        if self._stack is not None and self._loop is loop:
            return self.services
        if self._loop is not loop:
            self._adopt(loop)
        assert self._lock is not None
        async with self._lock:
            if self._stack is None:
                await self._open(loop)
        return self.services

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        old = self._loop
        if old is not None and old.is_running():
            raise IfriendError(
                f"the ifriend services of {self.uri!r} are connected in another running event "
                "loop; use them from that loop only"
            )
        if self._stack is not None:
            log.warning("ifriend services of %s: their event loop ended without closing them", self.uri)
        self._loop, self._lock, self._stack, self._closer = loop, asyncio.Lock(), None, None

    async def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._telemetry is None:
            self._telemetry = start_telemetry(self.services.settings)
        async with AsyncExitStack() as stack:
            await self.services.open_services(stack)
            self._stack = stack.pop_all()
        self._closer = loop.create_task(self._close_with_loop(), name="ifriend.adk: close with the loop")
        s = self.services.settings
        log.info(
            "ifriend services connected (sessions: %s, memory: %s, settings: %s)",
            s.session.backend, s.memory.backend, s.source,
        )

    async def _close_with_loop(self) -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            if self._closer is asyncio.current_task():
                self._closer = None
                await self._shutdown()
            raise

    async def close(self) -> None:
        """Close the connections and flush telemetry; the next call connects again."""
        closer, self._closer = self._closer, None
        if closer is not None and closer is not asyncio.current_task():
            closer.cancel()
        await self._shutdown()

    async def _shutdown(self) -> None:
        stack, self._stack = self._stack, None
        lease, self._telemetry = self._telemetry, None
        try:
            if stack is not None:
                await stack.aclose()
                log.info("ifriend services closed (settings: %s)", self.services.settings.source)
        finally:
            if lease is not None:
                await lease.release()


class LazySessionService(BaseSessionService):
    """ifriend's session service as ADK's server holds it: connects on first use."""

    def __init__(self, shared: SharedServices) -> None:
        self.shared = shared

    @property
    def service(self) -> BaseSessionService:
        """The service every call goes to (the one an `App` on the same file would build)."""
        return self.shared.services.session_service

    async def _ready(self) -> BaseSessionService:
        return (await self.shared.ready()).session_service

    async def connect(self) -> None:
        await self.shared.ready()

    async def close(self) -> None:
        """Close the connections this service shares with its memory service."""
        await self.shared.close()

    async def ping(self) -> None:
        service = await self._ready()
        ping = getattr(service, "ping", None)
        if ping is not None:
            await ping()

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        service = await self._ready()
        return await service.create_session(
            app_name=app_name, user_id=user_id, state=state, session_id=session_id
        )

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        service = await self._ready()
        return await service.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id, config=config
        )

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        service = await self._ready()
        return await service.list_sessions(app_name=app_name, user_id=user_id)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        service = await self._ready()
        await service.delete_session(app_name=app_name, user_id=user_id, session_id=session_id)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        service = await self._ready()
        return await service.get_user_state(app_name=app_name, user_id=user_id)

    async def append_event(self, session: Session, event: Event) -> Event:
        service = await self._ready()
        return await service.append_event(session, event)

    async def flush(self) -> None:
        if self.shared.connected:
            await self.service.flush()


class LazyMemoryService(BaseMemoryService):
    """ifriend's memory service as ADK's server holds it: connects on first use."""

    def __init__(self, shared: SharedServices) -> None:
        self.shared = shared

    @property
    def service(self) -> BaseMemoryService:
        """The service every call goes to (the one an `App` on the same file would build)."""
        return self.shared.services.memory_service

    async def _ready(self) -> BaseMemoryService:
        return (await self.shared.ready()).memory_service

    async def connect(self) -> None:
        await self.shared.ready()

    async def close(self) -> None:
        """Close the connections this service shares with its session service."""
        await self.shared.close()

    async def ping(self) -> None:
        service = await self._ready()
        ping = getattr(service, "ping", None)
        if ping is not None:
            await ping()

    async def add_session_to_memory(self, session: Session) -> None:
        service = await self._ready()
        await service.add_session_to_memory(session)

    async def add_events_to_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        events: Sequence[Event],
        session_id: str | None = None,
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        service = await self._ready()
        await service.add_events_to_memory(
            app_name=app_name,
            user_id=user_id,
            events=events,
            session_id=session_id,
            custom_metadata=custom_metadata,
        )

    async def add_memory(
        self,
        *,
        app_name: str,
        user_id: str,
        memories: Sequence[MemoryEntry],
        custom_metadata: Mapping[str, object] | None = None,
    ) -> None:
        service = await self._ready()
        await service.add_memory(
            app_name=app_name, user_id=user_id, memories=memories, custom_metadata=custom_metadata
        )

    async def search_memory(self, *, app_name: str, user_id: str, query: str) -> SearchMemoryResponse:
        service = await self._ready()
        return await service.search_memory(app_name=app_name, user_id=user_id, query=query)

    async def delete_memory(
        self, *, app_name: str, user_id: str, memory_id: str | None = None
    ) -> None:
        service = await self._ready()
        await service.delete_memory(app_name=app_name, user_id=user_id, memory_id=memory_id)
