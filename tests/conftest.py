"""Shared fixtures: a migrated PostgreSQL database and a Redis database of this run's own."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from migrations.runner import upgrade
from models.db import make_engine, make_session_factory
from tests.support import leaks
from tests.support.services import postgres_database, redis_database


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(leaks, "genqueue-leaks")  # fails a run that leaks a process


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


@pytest.fixture(scope="session")
def pg_sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def private_sessions() -> Iterator[sessionmaker[Session]]:
    """A migrated database for one test module alone. Tests that run the dispatcher themselves
    (or leave rows in odd states) use it, so the integration stack's worker, which polls every
    due row of the shared database, never sees their rows."""
    with postgres_database() as url:
        upgrade(url)
        engine = make_engine(url)
        yield make_session_factory(engine)
        engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def sessions(
    request: pytest.FixtureRequest, private_sessions: sessionmaker[Session], tmp_path: Path
) -> Iterator[sessionmaker[Session]]:
    """Each test twice, for code whose SQL differs between the backends (SKIP LOCKED against
    BEGIN IMMEDIATE, ON CONFLICT, RETURNING): the module's private PostgreSQL database, then a
    fresh SQLite file (what ``genqueue up`` runs)."""
    if request.param == "postgresql":
        yield private_sessions
        return
    url = f"sqlite:///{tmp_path / 'genqueue.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()
