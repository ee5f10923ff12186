"""Fixtures of the memory contract suite, parametrized over its backends (`backends.SUITE`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack

import pytest
from google.adk.memory.base_memory_service import BaseMemoryService

from .backends import SUITE, MemoryHarness


@pytest.fixture(scope="session", autouse=True)
def _drop_memory_server_data_after_the_run() -> Iterator[None]:
    yield
    asyncio.run(SUITE.drop_server_data())


@pytest.fixture(params=SUITE.params())
async def memory_backend(request: pytest.FixtureRequest) -> AsyncIterator[MemoryHarness]:
    spec = SUITE.require(request.param)
    async with AsyncExitStack() as stack:
        yield MemoryHarness(request.param, spec, stack)


@pytest.fixture
async def memory_service(memory_backend: MemoryHarness) -> BaseMemoryService:
    """`App(Settings(...)).memory_service` of the backend under test, default settings."""
    return await memory_backend.open()


@pytest.fixture
def open_memory(memory_backend: MemoryHarness) -> Callable[..., Awaitable[BaseMemoryService]]:
    """`await open_memory(memory={"max_results": 3})`: another service of the same backend."""
    return memory_backend.open


@pytest.fixture
def app_name(request: pytest.FixtureRequest) -> str:
    return MemoryHarness.app_name(request.node.originalname[5:25])
