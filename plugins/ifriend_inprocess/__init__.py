"""Built-in plugin: the in-process session and memory backends, both named `memory` (no servers)."""

from __future__ import annotations

from ifriend.plugin_api import BackendContext, hookimpl

from .memory import InProcessMemoryStore
from .sessions import InProcessSessionStore


def _memory_store(context: BackendContext) -> InProcessMemoryStore:
    return InProcessMemoryStore()


@hookimpl
def register_session_backends(register) -> None:
    register("memory", lambda context: InProcessSessionStore())


@hookimpl
def register_memory_backends(register) -> None:
    register("memory", _memory_store)


__all__ = ["InProcessMemoryStore", "InProcessSessionStore"]
