"""Session fixtures: one real dev stack (PostgreSQL, Redis, NATS with mTLS), migrated, its
event streams set up by the operator."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from fulcrum.admin import setup_events
from fulcrum.kit.migrate import migrate
from tests.support.processes import FulcrumProcess, start_api
from tests.support.stack import LiveStack, new_home, stack_env


@pytest.fixture(scope="session")
def stack() -> Iterator[LiveStack]:
    home = new_home()
    test_stack = LiveStack(home, stack_env(home))
    try:
        test_stack.up()
        migrate(test_stack.settings)
        asyncio.run(setup_events(test_stack.settings))
        yield test_stack
    finally:
        test_stack.destroy()


@pytest.fixture(scope="session")
def api(stack: LiveStack) -> Iterator[FulcrumProcess]:
    """One real `fulcrum api` process (gRPC + REST) against the session's stack."""
    process = start_api(stack)
    yield process
    process.stop()
