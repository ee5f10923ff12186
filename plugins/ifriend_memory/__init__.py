"""Built-in plugin: the in-process `memory` session and memory backends (no servers)."""

from __future__ import annotations

from ifriend import BackendContext, hookimpl

from .memory import InProcessMemoryStore
from .store import MemoryStore


def _memory_store(context: BackendContext) -> InProcessMemoryStore:
    return InProcessMemoryStore()


@hookimpl
def register_session_backends(register) -> None:
    register("memory", lambda context: MemoryStore())


@hookimpl
def register_memory_backends(register) -> None:
    register("memory", _memory_store)


__all__ = ["InProcessMemoryStore", "MemoryStore"]
