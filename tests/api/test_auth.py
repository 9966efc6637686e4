"""Keys and tenants: 401 JSON bodies, both schemes, revoked keys, and another tenant's rows
answering 404 on every route of both surfaces."""

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.auth import KeyCache
from models.keys import find_key, revoke_key
from tests.api.support import MODEL, auth

PROMPT = {"prompt": "a lighthouse"}
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", f"/{MODEL}", PROMPT),
    ("POST", "/v1/generations", {"model": MODEL, "input": PROMPT}),
    ("GET", "/v1/generations", None),
    ("GET", "/v1/generations/00000000-0000-0000-0000-000000000000", None),
    ("POST", "/v1/generations/00000000-0000-0000-0000-000000000000/cancel", None),
    ("GET", "/fal-ai/flux-pro/requests/00000000-0000-0000-0000-000000000000", None),
    ("GET", "/fal-ai/flux-pro/requests/00000000-0000-0000-0000-000000000000/status", None),
    ("GET", "/fal-ai/flux-pro/requests/00000000-0000-0000-0000-000000000000/status/stream", None),
    ("PUT", "/fal-ai/flux-pro/requests/00000000-0000-0000-0000-000000000000/cancel", None),
    ("POST", "/fal-ai/unknown-model", PROMPT),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
@pytest.mark.parametrize(
    ("header", "needle"),
    [
        (None, "Missing API key"),
        ("", "Missing API key"),
        ("Key", "Malformed"),
        ("Basic dXNlcjpwdw==", "Malformed"),
        ("Bearer", "Malformed"),
        ("Key gq_not-a-real-key", "Invalid"),
        ("Bearer gq_not-a-real-key", "Invalid"),
    ],
)
def test_without_a_valid_key_every_route_is_401_json(
    client: TestClient, method: str, path: str, body: Any, header: str | None, needle: str
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert needle in response.json()["detail"]
    assert "Bearer" in response.headers["www-authenticate"]


@pytest.mark.parametrize("scheme", ["Bearer", "Key", "bearer", "key"])
def test_both_schemes_are_accepted(client: TestClient, key: str, scheme: str) -> None:
    response = client.post(f"/{MODEL}", json=PROMPT, headers=auth(key, scheme))
    assert response.status_code == 200, response.text


def test_a_revoked_key_is_401_once_the_key_cache_lets_it_go(
    client: TestClient,
    api_app: FastAPI,
    key: str,
    pg_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    cache = KeyCache(ttl=5.0, clock=lambda: now[0])
    monkeypatch.setattr(api_app.state.genqueue.auth, "cache", cache)
    assert client.get("/v1/generations", headers=auth(key)).status_code == 200
    with pg_sessions.begin() as session:
        row = find_key(session, key)
        assert row is not None
        assert revoke_key(session, key_id_or_prefix=str(row.id))
    now[0] += 4.9  # the documented lag: this process still trusts its lookup
    assert client.get("/v1/generations", headers=auth(key)).status_code == 200
    now[0] += 0.2
    response = client.get("/v1/generations", headers=auth(key))
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or revoked API key"}
    now[0] += 60.0  # a refused key is never cached: it stays refused
    assert client.get("/v1/generations", headers=auth(key)).status_code == 401


def test_keys_are_not_stored_in_clear(key: str, pg_sessions: sessionmaker[Session]) -> None:
    with pg_sessions() as session:
        row = find_key(session, key)
        assert row is not None
        assert key not in (row.key_hash, row.prefix, row.name)


def test_another_tenants_generation_is_404_everywhere(
    client: TestClient, key: str, other_key: str
) -> None:
    rid = client.post(f"/{MODEL}", json=PROMPT, headers=auth(key)).json()["request_id"]
    mine = auth(key)
    theirs = auth(other_key)
    base = f"/fal-ai/flux-pro/requests/{rid}"
    checks = [
        ("GET", f"/v1/generations/{rid}"),
        ("POST", f"/v1/generations/{rid}/cancel"),
        ("GET", base),
        ("GET", base + "/"),
        ("GET", base + "/status"),
        ("GET", base + "/status/"),
        ("GET", base + "/status/stream"),
        ("PUT", base + "/cancel"),
    ]
    for method, path in checks:
        response = client.request(method, path, headers=theirs)
        assert response.status_code == 404, (method, path, response.text)
        assert "detail" in response.json()
    listed = client.get("/v1/generations", headers=theirs).json()["items"]
    assert rid not in {item["id"] for item in listed}
    # ... and the owner still sees it, not cancelled by the other tenant's attempts
    record = client.get(f"/v1/generations/{rid}", headers=mine).json()
    assert record["status"] == "pending"
    assert record["cancel_requested_at"] is None


def test_same_tenant_different_keys_share_generations(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    from tests.api.support import new_key

    first = new_key(pg_sessions, tenant="shared-tenant")
    second = new_key(pg_sessions, tenant="shared-tenant")
    rid = client.post(f"/{MODEL}", json=PROMPT, headers=auth(first)).json()["request_id"]
    assert client.get(f"/v1/generations/{rid}", headers=auth(second)).status_code == 200


def test_ids_of_the_wrong_app_or_shape_are_404(client: TestClient, key: str) -> None:
    rid = client.post(f"/{MODEL}", json=PROMPT, headers=auth(key)).json()["request_id"]
    assert (
        client.get(f"/fal-ai/flux-dev/requests/{rid}/status", headers=auth(key)).status_code == 404
    )
    assert (
        client.get("/fal-ai/flux-pro/requests/not-a-uuid/status", headers=auth(key)).status_code
        == 404
    )
    assert client.get("/v1/generations/not-a-uuid", headers=auth(key)).status_code == 404
