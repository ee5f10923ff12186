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

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from google.adk.memory.base_memory_service import BaseMemoryService
from google.adk.sessions.base_session_service import BaseSessionService

from ..config import find_config_file, load_settings
from ..errors import IfriendError
from .lazy import LazyMemoryService, LazySessionService
from .shared import SharedServices
from .uris import SCHEME, config_file, uri_of

__all__ = [
    "SCHEME",
    "SERVICES_PY",
    "LazyMemoryService",
    "LazySessionService",
    "SharedServices",
    "close",
    "config_file",
    "memory_service_factory",
    "register",
    "server_commands",
    "session_service_factory",
    "shared_services",
    "uri_of",
    "write_services_py",
]

SERVICES_PY = "from ifriend.adk import register\nregister()\n"

log = logging.getLogger("ifriend.adk")

_shared: dict[str, SharedServices] = {}
_shared_lock = threading.Lock()


def register() -> None:
    """Register the `ifriend` scheme with ADK's service registry (sessions and memory).

    Also registers ifriend's models (`ifriend-echo`) with ADK's model registry.
    """
    from google.adk.cli.service_registry import get_service_registry

    from .. import models  # noqa: F401  (registers ifriend-echo)

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
