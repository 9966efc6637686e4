"""Costs on create, monthly budgets (402 ``budget_exceeded``) and ``GET /v1/usage``."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.pricing import PRICES
from models.status import GenerationStatus
from models.tables import Generation
from models.tenants import set_tenant
from tests.api.support import MODEL, auth, move, new_key, stored

PRICE = PRICES[MODEL]


def tenant_key(sessions: sessionmaker[Session], **settings: object) -> tuple[str, str]:
    name = f"b-{uuid.uuid4().hex[:8]}"
    key = new_key(sessions, tenant=name)
    if settings:
        with sessions.begin() as session:
            set_tenant(session, name, dict(settings))
    return name, key


def create(client: TestClient, key: str, **input: object) -> dict[str, object]:
    body = {"model": MODEL, "input": {"prompt": "p", **input}}
    answer = client.post("/v1/generations", json=body, headers=auth(key))
    assert answer.status_code == 201, answer.text
    record: dict[str, object] = answer.json()
    return record


def test_a_create_records_its_estimated_cost(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    record = create(client, key, num_images=3)
    assert record["estimated_cost"] == pytest.approx(3 * PRICE)
    assert record["final_cost"] is None
    with pg_sessions() as session:
        gen = session.get(Generation, uuid.UUID(str(record["id"])))
        assert gen is not None
        assert gen.unit_price == PRICE
        assert gen.estimated_cost == pytest.approx(3 * PRICE)


def test_a_budget_refuses_the_create_that_would_pass_it(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    name, key = tenant_key(pg_sessions, monthly_budget=round(2.5 * PRICE, 6))
    first = create(client, key)
    create(client, key)  # 2 × PRICE committed (pending)
    body = {"model": MODEL, "input": {"prompt": "one too many"}}
    refused = client.post("/v1/generations", json=body, headers=auth(key))
    assert refused.status_code == 402, refused.text
    answer = refused.json()
    assert answer["detail"] == "budget_exceeded"
    assert answer["spent"] == pytest.approx(2 * PRICE)
    assert answer["estimated_cost"] == pytest.approx(PRICE)
    assert f"tenant '{name}'" in answer["message"]
    fal = client.post(f"/{MODEL}", json={"prompt": "fal"}, headers=auth(key))
    assert (fal.status_code, fal.json()["detail"]) == (402, "budget_exceeded")
    assert stored(pg_sessions, name) == 2  # nothing of the refused ones
    # The first one failed upstream without a charge: its estimate no longer counts.
    move(
        pg_sessions,
        str(first["id"]),
        GenerationStatus.FAILED,
        completed_at=datetime.now(UTC),
        final_cost=0.0,
    )
    assert client.post("/v1/generations", json=body, headers=auth(key)).status_code == 201


def test_jobs_of_earlier_months_do_not_count(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    _, key = tenant_key(pg_sessions, monthly_budget=round(1.5 * PRICE, 6))
    old = create(client, key)
    move(
        pg_sessions,
        str(old["id"]),
        GenerationStatus.COMPLETED,
        created_at=datetime.now(UTC) - timedelta(days=40),
        completed_at=datetime.now(UTC) - timedelta(days=40),
        final_cost=PRICE,
    )
    create(client, key)


def test_usage_equals_the_jobs_own_numbers(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    name, key = tenant_key(pg_sessions)
    _, other = tenant_key(pg_sessions)
    ids = [str(create(client, key, num_images=n)["id"]) for n in (1, 2, 3, 4)]
    create(client, other)
    now = datetime.now(UTC)
    move(pg_sessions, ids[0], GenerationStatus.COMPLETED, completed_at=now, final_cost=PRICE)
    move(pg_sessions, ids[1], GenerationStatus.COMPLETED, completed_at=now, final_cost=0.5)
    move(pg_sessions, ids[2], GenerationStatus.CANCELLED, completed_at=now)
    answer = client.get("/v1/usage", headers=auth(key))
    assert answer.status_code == 200, answer.text
    usage = answer.json()
    assert usage["tenant"] == name
    with pg_sessions() as session:
        rows = session.scalars(
            select(Generation).where(Generation.id.in_([uuid.UUID(i) for i in ids]))
        ).all()
        expected: dict[tuple[str, str], list[float]] = {}
        for gen in rows:
            line = expected.setdefault((gen.model, gen.status), [0, 0.0, 0.0])
            line[0] += 1
            line[1] += gen.estimated_cost or 0.0
            line[2] += gen.final_cost or 0.0
    got = {
        (line["model"], line["status"]): [
            line["count"],
            line["estimated_cost"],
            line["final_cost"],
        ]
        for line in usage["lines"]
    }
    assert got == {k: [v[0], pytest.approx(v[1]), pytest.approx(v[2])] for k, v in expected.items()}
    assert usage["count"] == 4
    assert usage["estimated_cost"] == pytest.approx(10 * PRICE)
    assert usage["final_cost"] == pytest.approx(PRICE + 0.5)
    later = (now + timedelta(minutes=1)).isoformat()
    empty = client.get("/v1/usage", params={"since": later}, headers=auth(key))
    assert (empty.status_code, empty.json()["count"]) == (200, 0)  # after the default until
    window = client.get(
        "/v1/usage",
        params={"since": later, "until": (now + timedelta(minutes=2)).isoformat()},
        headers=auth(key),
    ).json()
    assert (window["count"], window["lines"]) == (0, [])


def test_usage_of_a_backwards_window_is_empty(client: TestClient, key: str) -> None:
    answer = client.get(
        "/v1/usage",
        params={"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
        headers=auth(key),
    )
    assert answer.status_code == 200
    assert (answer.json()["count"], answer.json()["lines"]) == (0, [])
