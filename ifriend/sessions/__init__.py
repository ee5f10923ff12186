"""The ADK session service and the tier contract it composes."""

from .service import SessionService
from .store import (
    AppendOutcome,
    AppendResult,
    EventRecord,
    Revision,
    SessionHeader,
    SessionKey,
    SessionStore,
    StoredSession,
    filter_events,
)
from .validation import SessionLimits

__all__ = [
    "AppendOutcome",
    "AppendResult",
    "EventRecord",
    "Revision",
    "SessionHeader",
    "SessionKey",
    "SessionLimits",
    "SessionService",
    "SessionStore",
    "StoredSession",
    "filter_events",
]
