"""``GET /v1/generations/{id}/deliveries`` (the delivery log) and ``POST …/deliveries/redeliver``:
the caller's own generations only."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.deliveries import Attempt, log_attempt
from models.status import GenerationStatus
from models.tables import Generation
from tests.api.support import MODEL, auth, complete, move

PROMPT = {"prompt": "a lighthouse at dusk"}
HOOK = "https://hooks.example.com/x"


def _ended(client: TestClient, key: str, sessions: sessionmaker[Session], **values: Any) -> str:
    created = client.post(
        "/v1/generations",
        json={"model": MODEL, "input": PROMPT, "webhook_url": HOOK},
        headers=auth(key),
    )
    gen_id = str(created.json()["id"])
    complete(sessions, gen_id, {"images": []})
    if values:
        move(sessions, gen_id, GenerationStatus.COMPLETED, **values)
    return gen_id


def _log(sessions: sessionmaker[Session], gen_id: str, outcome: str, status: int | None) -> None:
    with sessions.begin() as session:
        log_attempt(
            session,
            Attempt(
                generation_id=uuid.UUID(gen_id),
                at=datetime.now(UTC),
                attempt=1,
                url=HOOK,
                outcome=outcome,
                http_status=status,
                error=None if status == 200 else f"HTTP {status}",
                duration_ms=12,
                response_excerpt="x" * 5000,
            ),
        )


def test_the_log_lists_every_attempt(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    gen_id = _ended(client, key, pg_sessions)
    _log(pg_sessions, gen_id, "failed", 503)
    _log(pg_sessions, gen_id, "delivered", 200)
    answer = client.get(f"/v1/generations/{gen_id}/deliveries", headers=auth(key))
    assert answer.status_code == 200, answer.text
    log = answer.json()
    assert log["webhook_url"] == HOOK
    first, second = log["attempts"]
    assert (first["outcome"], first["http_status"], first["error"]) == ("failed", 503, "HTTP 503")
    assert (second["outcome"], second["http_status"], second["error"]) == ("delivered", 200, None)
    assert len(first["response_excerpt"]) == 1024
    assert first["url"] == HOOK
    assert first["duration_ms"] == 12


def test_another_tenant_sees_nothing(
    client: TestClient, key: str, other_key: str, pg_sessions: sessionmaker[Session]
) -> None:
    gen_id = _ended(client, key, pg_sessions)
    path = f"/v1/generations/{gen_id}/deliveries"
    assert client.get(path, headers=auth(other_key)).status_code == 404
    assert client.post(f"{path}/redeliver", headers=auth(other_key)).status_code == 404
    assert (
        client.get(f"/v1/generations/{uuid.uuid4()}/deliveries", headers=auth(key)).status_code
        == 404
    )


def test_redeliver_makes_the_final_payload_due_again(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    now = datetime.now(UTC)
    gen_id = _ended(
        client, key, pg_sessions, webhook_delivered_at=now, webhook_attempts=3, completed_at=now
    )
    answer = client.post(f"/v1/generations/{gen_id}/deliveries/redeliver", headers=auth(key))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {
        "outcome": "scheduled",
        "deliveries_url": f"/v1/generations/{gen_id}/deliveries",
    }
    with pg_sessions() as session:
        gen = session.scalar(select(Generation).where(Generation.id == uuid.UUID(gen_id)))
        assert gen is not None
        assert (gen.webhook_delivered_at, gen.webhook_stopped_at, gen.webhook_attempts) == (
            None,
            None,
            0,
        )
        assert gen.webhook_next_at is not None


def test_redeliver_is_refused_while_it_cannot_be_done(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    pending = client.post(
        "/v1/generations",
        json={"model": MODEL, "input": PROMPT, "webhook_url": HOOK},
        headers=auth(key),
    ).json()["id"]
    silent = client.post(
        "/v1/generations", json={"model": MODEL, "input": PROMPT}, headers=auth(key)
    )
    silent_id = silent.json()["id"]
    complete(pg_sessions, silent_id, {"images": []})
    busy = _ended(
        client, key, pg_sessions, webhook_lease_until=datetime.now(UTC) + timedelta(minutes=1)
    )
    for gen_id, says in (
        (pending, "has not ended"),
        (silent_id, "no webhook_url"),
        (busy, "in progress"),
    ):
        answer = client.post(f"/v1/generations/{gen_id}/deliveries/redeliver", headers=auth(key))
        assert answer.status_code == 409, answer.text
        assert says in answer.json()["detail"]
