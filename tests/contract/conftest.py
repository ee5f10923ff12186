"""Fixtures of the session contract suite, parametrized over its backends (`backends.SUITE`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack

import pytest
from google.adk.sessions.base_session_service import BaseSessionService

from .backends import SUITE, Harness, UniqueNames


@pytest.fixture(scope="session", autouse=True)
def _drop_server_data_after_the_run() -> Iterator[None]:
    yield
    asyncio.run(SUITE.drop_server_data())


@pytest.fixture(params=SUITE.params())
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """The backend under test; its sessions in the test's app names are deleted afterwards."""
    spec = SUITE.require(request.param)
    async with AsyncExitStack() as stack:
        harness = Harness(request.param, spec, stack, label=request.node.originalname)
        yield harness
        await harness.cleanup()


@pytest.fixture
async def session_service(backend: Harness) -> BaseSessionService:
    """`App(Settings(...)).session_service` of the backend under test, default settings."""
    return await backend.open()


@pytest.fixture
def open_service(backend: Harness) -> Callable[..., Awaitable[BaseSessionService]]:
    """`await open_service(session={"max_event_bytes": 1024})`: another service of the same
    backend with settings overridden."""
    return backend.open


@pytest.fixture
def unique(backend: Harness) -> UniqueNames:
    """`unique()` is an app name of this test alone; `unique.track(name)` adds one built by hand."""
    return backend.names


@pytest.fixture
def app_name(unique: UniqueNames) -> str:
    return unique()
