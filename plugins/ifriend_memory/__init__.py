"""Built-in plugin: the in-process `memory` session and memory backends."""

from __future__ import annotations

from ifriend import BackendContext, hookimpl

from .store import MemoryStore


def _memory_service(context: BackendContext):
    from google.adk.memory.in_memory_memory_service import InMemoryMemoryService

    return InMemoryMemoryService()


@hookimpl
def register_session_backends(register) -> None:
    register("memory", lambda context: MemoryStore())


@hookimpl
def register_memory_backends(register) -> None:
    register("memory", _memory_service)


__all__ = ["MemoryStore"]
