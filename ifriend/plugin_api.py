"""What a plugin may import from ifriend: the names below, from this module only.

Everything else under `ifriend` is internal and may change without notice; the
built-in plugins under `plugins/` keep to this surface too (a test scans their
imports). `docs/plugins.md` describes each name.

    from ifriend.plugin_api import BackendContext, SessionKey, hookimpl, telemetry
"""

from __future__ import annotations

from . import telemetry
from .agent import describe_agent
from .app import App, BackendContext, Channel, ChannelContext
from .attachments import Attachment
from .cli_state import CliState
from .config import Settings, redact, url_port
from .conversations import Conversations
from .gc_tuning import tune_gc
from .errors import (
    BackendTimeoutError,
    BackendUnavailableError,
    ConfigError,
    IfriendError,
    PluginError,
    StorageError,
    TopologyError,
)
from .hookspecs import hookimpl
from .locks import KeyedLocks
from .memory.ranking import Postings, Scanned, best
from .memory.store import MemoryHit, MemoryRecord, MemoryScope, MemoryStore
from .memory.text import QueryTerm, verify
from .models import EchoModel
from .sessions.codec import decode_events, decode_value, encode_value
from .sessions.store import (
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
from .tls import TlsOptions

__all__ = [
    # hooks and what they hand a plugin
    "hookimpl",
    "BackendContext",
    "Channel",
    "ChannelContext",
    "CliState",
    # errors a plugin raises
    "IfriendError",
    "ConfigError",
    "TopologyError",
    "PluginError",
    "StorageError",
    "BackendUnavailableError",
    "BackendTimeoutError",
    # settings of a backend
    "TlsOptions",
    "url_port",
    "redact",
    # the session store contract
    "SessionStore",
    "SessionKey",
    "Revision",
    "StoredSession",
    "SessionHeader",
    "EventRecord",
    "AppendOutcome",
    "AppendResult",
    "filter_events",
    "decode_events",
    "encode_value",
    "decode_value",
    # the memory store contract
    "MemoryStore",
    "MemoryScope",
    "MemoryRecord",
    "MemoryHit",
    "QueryTerm",
    "verify",
    "Postings",
    "Scanned",
    "best",
    # channels
    "Conversations",
    "Attachment",
    "describe_agent",
    "KeyedLocks",
    # spans and metrics
    "telemetry",
    # driving an App (benchmarks, test tools)
    "App",
    "Settings",
    "EchoModel",
    "tune_gc",
]
