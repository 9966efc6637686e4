"""``GET /v1/webhook-secret`` and ``POST /v1/webhook-secret/rotate``: each tenant sees its own
secret only; the database holds it encrypted."""

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.keys import hash_key
from models.tables import ApiKey, Tenant
from tests.api.support import auth


def _stored(sessions: sessionmaker[Session], key: str) -> tuple[str | None, str | None]:
    with sessions() as session:
        tenant_id: uuid.UUID | None = session.scalar(
            select(ApiKey.tenant_id).where(ApiKey.key_hash == hash_key(key))
        )
        row = session.get(Tenant, tenant_id)
        assert row is not None
        return row.webhook_secret, row.webhook_secret_previous


def test_each_tenant_reads_its_own_secret(
    client: TestClient, key: str, other_key: str, pg_sessions: sessionmaker[Session]
) -> None:
    mine = client.get("/v1/webhook-secret", headers=auth(key))
    assert mine.status_code == 200, mine.text
    secret = mine.json()["secret"]
    assert secret.startswith("whsec_")
    assert client.get("/v1/webhook-secret", headers=auth(key)).json() == {"secret": secret}
    theirs = client.get("/v1/webhook-secret", headers=auth(other_key)).json()["secret"]
    assert theirs != secret
    sealed, _ = _stored(pg_sessions, key)
    assert sealed is not None
    assert secret not in sealed
    assert secret.removeprefix("whsec_") not in sealed


def test_rotation_answers_the_new_secret_and_keeps_the_old_one_sealed(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    old = client.get("/v1/webhook-secret", headers=auth(key)).json()["secret"]
    rotated = client.post("/v1/webhook-secret/rotate", headers=auth(key))
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != old
    assert client.get("/v1/webhook-secret", headers=auth(key)).json() == {"secret": new}
    sealed, previous = _stored(pg_sessions, key)
    assert previous is not None
    assert old not in previous
    assert new not in str(sealed)


def test_the_secret_needs_a_key(client: TestClient) -> None:
    assert client.get("/v1/webhook-secret").status_code == 401
    assert client.post("/v1/webhook-secret/rotate").status_code == 401
