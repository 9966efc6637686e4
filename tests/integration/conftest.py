"""A running stack for each integration module: real PostgreSQL, real Redis, the
simulator over HTTP, a real Celery worker (prefork) and beat."""

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from playwright.sync_api import Browser
from sqlalchemy.orm import Session, sessionmaker

from tests.support.browser import chromium
from tests.support.jobs import Jobs, settle_leftovers
from tests.support.stack import SimAdmin, Stack, running_stack

SIM_DEFAULTS: dict[str, Any] = {
    "run_time": 1.0,
    "capacity": 4,
    "honor_cancel": True,
    "validate": "submit",
    "result_ttl": 3600.0,
}


@pytest.fixture(scope="module")
def stack(pg_url: str, redis_url: str) -> Iterator[Stack]:
    """One stack a module: its worker and beat work every due row of the run's database and
    take every task on the run's Redis, so they must not outlive the module (under pytest -n,
    a test of another directory that runs later in the same process once found its rows
    settled by them)."""
    # A copy's lease is three media_timeouts plus one more: a killed copy is retried in ~16 s.
    env = {"GENQUEUE_MEDIA_TIMEOUT": "4"}
    with running_stack(database_url=pg_url, broker_url=redis_url, extra_env=env) as s:
        yield s


@pytest.fixture
def sim(stack: Stack, pg_sessions: sessionmaker[Session], publisher: Celery) -> Iterator[SimAdmin]:
    settle_leftovers(pg_sessions, publisher)
    stack.sim.clear_faults()
    stack.sim.configure(**SIM_DEFAULTS)
    yield stack.sim
    stack.sim.clear_faults()
    stack.sim.configure(**SIM_DEFAULTS)


@pytest.fixture(scope="session")
def publisher(redis_url: str) -> Iterator[Celery]:
    app = Celery("genqueue-tests", broker=redis_url)
    yield app
    app.close()


@pytest.fixture
def jobs(pg_sessions: sessionmaker[Session], publisher: Celery, stack: Stack, sim: Any) -> Jobs:
    return Jobs(pg_sessions, publisher, stack)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for a module's browser tests (each test opens its own context). Not for the
    session: Playwright's sync API holds an event loop on the main thread while it runs, and
    every later `asyncio.run()` in the session (the simulator's ASGI tests) would fail."""
    with chromium() as b:
        yield b
