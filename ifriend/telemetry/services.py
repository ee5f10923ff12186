"""Spans and metrics for ADK services ifriend does not implement itself.

ifriend's own `SessionService` opens its `ifriend.session.*` operations itself. A
memory backend (any ADK `BaseMemoryService`) or a session backend that returned a
plain ADK `BaseSessionService` is instrumented in place by the App: its operations
are wrapped on the instance, so it keeps its class, its identity and its other
methods. Only counts go into attributes, never queries, texts or ids.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from .names import GEN_AI_OPERATION, MEMORY_GEN_AI_OPERATIONS
from .recorder import Recorder, current_recorder

S = TypeVar("S")
logger = logging.getLogger("ifriend.telemetry")

_MARK = "_ifriend_instrumented"

MEMORY_OPERATIONS = (
    "add_session_to_memory",
    "add_events_to_memory",
    "add_memory",
    "search_memory",
    "delete_memory",
)
SESSION_OPERATIONS = (
    "create_session",
    "get_session",
    "list_sessions",
    "delete_session",
    "append_event",
    "get_user_state",
)


def _memory_attributes(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if name == "add_session_to_memory":
        session = args[0] if args else kwargs.get("session")
        events = getattr(session, "events", None)
        return {"ifriend.events_written": len(events)} if events is not None else {}
    if name == "add_events_to_memory" and kwargs.get("events") is not None:
        return {"ifriend.events_written": len(kwargs["events"])}
    if name == "add_memory" and kwargs.get("memories") is not None:
        return {"ifriend.memories_written": len(kwargs["memories"])}
    return {}


def _memory_result(name: str, result: Any) -> dict[str, Any]:
    if name == "search_memory":
        memories = getattr(result, "memories", None)
        if memories is not None:
            return {"ifriend.memories_read": len(memories)}
    return {}


def _session_result(name: str, result: Any) -> dict[str, Any]:
    if name == "get_session":
        if result is None:
            return {"ifriend.outcome": "not_found"}
        return {"ifriend.events": len(result.events)}
    if name == "list_sessions":
        return {"ifriend.sessions": len(getattr(result, "sessions", ()) or ())}
    if name == "append_event" and getattr(result, "partial", False):
        return {"ifriend.events_written": 0}
    if name == "append_event":
        return {"ifriend.events_written": 1}
    return {}


def _wrap(
    method: Callable[..., Any],
    span_name: str,
    backend: str,
    before: Callable[[str, tuple[Any, ...], dict[str, Any]], dict[str, Any]] | None,
    after: Callable[[str, Any], dict[str, Any]],
    name: str,
    recorder: Recorder | None,
) -> Callable[..., Any]:
    attributes = {GEN_AI_OPERATION: MEMORY_GEN_AI_OPERATIONS[name]} if name in MEMORY_GEN_AI_OPERATIONS else {}

    @functools.wraps(method)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        with (recorder or current_recorder()).operation(span_name, backend=backend, **attributes) as op:
            if before is not None:
                op.set_attributes(before(name, args, kwargs))
            result = await method(*args, **kwargs)
            found = after(name, result)
            if found:
                op.set_attributes(found)
            return result

    return traced


def instrument_memory_service(service: S, *, backend: str, recorder: Recorder | None = None) -> S:
    """`service` with an `ifriend.memory.<op>` operation around each memory operation,
    recorded on `recorder` (an App's; None: whichever is in flight)."""
    return _instrument(
        service, "ifriend.memory", MEMORY_OPERATIONS, backend, _memory_attributes, _memory_result, recorder
    )


def instrument_session_service(service: S, *, backend: str, recorder: Recorder | None = None) -> S:
    """`service` (an ADK session service not built on ifriend's `SessionService`) with an
    `ifriend.session.<op>` operation around each session operation, recorded on `recorder`."""
    return _instrument(
        service, "ifriend.session", SESSION_OPERATIONS, backend, None, _session_result, recorder
    )


def _instrument(
    service: S,
    prefix: str,
    names: tuple[str, ...],
    backend: str,
    before: Callable[[str, tuple[Any, ...], dict[str, Any]], dict[str, Any]] | None,
    after: Callable[[str, Any], dict[str, Any]],
    recorder: Recorder | None,
) -> S:
    if getattr(service, _MARK, False):
        return service
    for name in names:
        method = getattr(service, name, None)
        if method is None or not callable(method):
            continue
        try:
            setattr(service, name, _wrap(method, f"{prefix}.{name}", backend, before, after, name, recorder))
        except (AttributeError, TypeError, ValueError):  # slots, frozen models
            logger.debug("telemetry: cannot instrument %s.%s", type(service).__name__, name)
            return service
    try:
        setattr(service, _MARK, True)
    except (AttributeError, TypeError, ValueError):
        pass
    return service
