"""The memory backends the memory contract suite runs against (`tests/backends.py` holds the
table; there is no tiered memory backend), and its harness."""

from __future__ import annotations

import uuid
from typing import Any

from google.adk.memory.base_memory_service import BaseMemoryService

from ..backends import RUN_ID, BackendHarness, Suite

SUITE = Suite(
    "memory",
    redis_prefix=f"ifriend-memory-{RUN_ID}",
    table_prefix=f"ifm_{RUN_ID}_",
    only=("memory", "redis", "mysql", "redis-cluster"),
)
BACKENDS = SUITE.backends


class MemoryHarness(BackendHarness):
    """Opens memory services of one backend through `App`; all closed with the stack."""

    async def open(self, **overrides: Any) -> BaseMemoryService:
        return (await self.open_app(**overrides)).memory_service

    @staticmethod
    def app_name(label: str = "m") -> str:
        """An app name no other test (or run) uses: tests never see each other's memory."""
        return f"mt-{label}-{uuid.uuid4().hex[:12]}"
