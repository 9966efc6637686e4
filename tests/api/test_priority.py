"""Priority on create: ``priority`` on ``/v1``, ``X-Fal-Queue-Priority`` on the fal surface."""

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.tables import Generation
from tests.api.support import MODEL, auth


def stored_priority(sessions: sessionmaker[Session], generation_id: str) -> int:
    with sessions() as session:
        gen = session.get(Generation, uuid.UUID(generation_id))
        assert gen is not None
        return gen.priority


def count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Generation)) or 0)


@pytest.mark.parametrize(("given", "rank"), [(None, 1), ("high", 0), ("normal", 1), ("low", 2)])
def test_v1_create_stores_and_answers_the_priority(
    client: TestClient,
    key: str,
    pg_sessions: sessionmaker[Session],
    given: str | None,
    rank: int,
) -> None:
    body: dict[str, object] = {"model": MODEL, "input": {"prompt": "p"}}
    if given is not None:
        body["priority"] = given
    answer = client.post("/v1/generations", json=body, headers=auth(key))
    assert answer.status_code == 201, answer.text
    record = answer.json()
    assert record["priority"] == (given or "normal")
    assert stored_priority(pg_sessions, record["id"]) == rank
    again = client.get(f"/v1/generations/{record['id']}", headers=auth(key)).json()
    assert again["priority"] == record["priority"]


def test_v1_refuses_an_unknown_priority(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    before = count(pg_sessions)
    body = {"model": MODEL, "input": {"prompt": "p"}, "priority": "urgent"}
    answer = client.post("/v1/generations", json=body, headers=auth(key))
    assert answer.status_code == 422
    [item] = answer.json()["detail"]
    assert item["loc"] == ["body", "priority"]
    assert count(pg_sessions) == before


@pytest.mark.parametrize(("header", "rank"), [("low", 2), ("normal", 1), ("HIGH", 0)])
def test_fal_submit_takes_the_queue_priority_header(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session], header: str, rank: int
) -> None:
    answer = client.post(
        f"/{MODEL}",
        json={"prompt": "p"},
        headers={**auth(key), "X-Fal-Queue-Priority": header},
    )
    assert answer.status_code == 200, answer.text
    assert stored_priority(pg_sessions, answer.json()["request_id"]) == rank


def test_fal_submit_refuses_an_unknown_queue_priority(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    before = count(pg_sessions)
    answer = client.post(
        f"/{MODEL}", json={"prompt": "p"}, headers={**auth(key), "X-Fal-Queue-Priority": "now"}
    )
    assert answer.status_code == 422
    [item] = answer.json()["detail"]
    assert item["loc"] == ["header", "X-Fal-Queue-Priority"]
    assert "high, normal, low" in item["msg"]
    assert count(pg_sessions) == before
