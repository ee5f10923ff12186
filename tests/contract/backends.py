"""The session backends the contract suite runs against (`tests/backends.py` holds the table),
and its harness: app names of the test's own, whose sessions are deleted after it."""

from __future__ import annotations

import re
import uuid
from contextlib import AsyncExitStack
from typing import Any

from google.adk.sessions.base_session_service import BaseSessionService

from ..backends import RUN_ID, BackendHarness, BackendSpec, Suite

SUITE = Suite("session", redis_prefix=f"ifriend-contract-{RUN_ID}", table_prefix=f"ifc_{RUN_ID}_")
BACKENDS = SUITE.backends


class UniqueNames:
    """Hands out app names no other test (or run) uses, and remembers them for cleanup."""

    def __init__(self, label: str = "t") -> None:
        self.label = re.sub(r"[^A-Za-z0-9]+", "-", label)[:40].strip("-") or "t"
        self.apps: list[str] = []

    def __call__(self, suffix: str = "") -> str:
        return self.track(f"ct-{self.label}-{uuid.uuid4().hex[:12]}{suffix}")

    def track(self, app_name: str) -> str:
        """Remember an app name built by hand so its sessions are deleted at teardown."""
        if app_name not in self.apps:
            self.apps.append(app_name)
        return app_name


class Harness(BackendHarness):
    """Opens session services of one backend; `cleanup()` deletes every session of the
    tracked apps."""

    def __init__(self, name: str, spec: BackendSpec, stack: AsyncExitStack, label: str = "t"):
        super().__init__(name, spec, stack)
        self.names = UniqueNames(label)
        self.services: list[BaseSessionService] = []

    async def open(self, **overrides: Any) -> BaseSessionService:
        """A session service built through `App`, closed when the harness's stack closes."""
        service = (await self.open_app(**overrides)).session_service
        self.services.append(service)
        return service

    async def cleanup(self) -> None:
        for service in self.services:
            for app_name in self.names.apps:
                listed = await service.list_sessions(app_name=app_name)
                for s in listed.sessions:
                    await service.delete_session(
                        app_name=app_name, user_id=s.user_id, session_id=s.id
                    )
