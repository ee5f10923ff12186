"""The ADK memory service and the store contract it composes."""

from .service import MemoryLimits, MemoryService
from .store import MemoryHit, MemoryRecord, MemoryScope, MemoryStore, rank_key
from .text import QueryTerm, query_terms

__all__ = [
    "MemoryHit",
    "MemoryLimits",
    "MemoryRecord",
    "MemoryScope",
    "MemoryService",
    "MemoryStore",
    "QueryTerm",
    "query_terms",
    "rank_key",
]
