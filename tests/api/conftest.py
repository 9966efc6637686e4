"""Fixtures: one app on the session's migrated PostgreSQL, a recording publisher, keys."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from models.settings import Settings
from tests.api.support import RecordingPublisher, new_key

MAX_BODY = 64 * 1024


@pytest.fixture(scope="session")
def api_settings(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=pg_url,
        broker_url="redis://127.0.0.1:1/0",  # never used: the publisher is replaced
        data_dir=Path(tmp_path_factory.mktemp("api-data")),
        max_body_bytes=MAX_BODY,
        stream_poll_interval=0.05,
        stream_ping_interval=0.2,
        run_timeout=0.2,  # no worker runs here: /run answers 504 at once
    )


@pytest.fixture(scope="session")
def recorder() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture(scope="session")
def api_app(api_settings: Settings, recorder: RecordingPublisher) -> FastAPI:
    return create_app(api_settings, publisher=recorder)


@pytest.fixture(scope="session")
def session_client(api_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(api_app) as client:
        yield client


@pytest.fixture
def client(session_client: TestClient, recorder: RecordingPublisher) -> TestClient:
    recorder.published.clear()
    recorder.fail = False
    recorder.ready = True
    return session_client


@pytest.fixture
def key(pg_sessions: sessionmaker[Session]) -> str:
    return new_key(pg_sessions)


@pytest.fixture
def other_key(pg_sessions: sessionmaker[Session]) -> str:
    return new_key(pg_sessions)
