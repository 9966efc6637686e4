"""Bad requests and bad days: 413, invalid JSON, the database down (503), the broker down."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from models.settings import Settings
from tests.api.conftest import MAX_BODY
from tests.api.support import MODEL, RecordingPublisher, auth

PROMPT = {"prompt": "a lighthouse"}


@pytest.mark.parametrize("path", [f"/{MODEL}", "/v1/generations"])
def test_oversized_body_is_413(client: TestClient, key: str, path: str) -> None:
    body = b'{"prompt": "' + b"x" * MAX_BODY + b'"}'
    response = client.post(
        path, content=body, headers={**auth(key), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert str(MAX_BODY) in response.json()["detail"]


def test_oversized_chunked_body_is_413(client: TestClient, key: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(MAX_BODY // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = client.post(f"/{MODEL}", content=chunks(), headers=auth(key))
    assert response.status_code == 413
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'{"prompt": "x",}',
        b'{"prompt": NaN}',
        b'{"guidance_scale": Infinity}',
        b"\xff\xfe",
        b'{"prompt": "x"} trailing',
    ],
)
@pytest.mark.parametrize("path", [f"/{MODEL}", "/v1/generations"])
def test_invalid_json_is_422(client: TestClient, key: str, raw: bytes, path: str) -> None:
    response = client.post(
        path, content=raw, headers={**auth(key), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"][0] == "body"


def test_empty_body_is_422(client: TestClient, key: str) -> None:
    response = client.post(f"/{MODEL}", content=b"", headers=auth(key))
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "missing"


def test_unknown_routes_and_methods_answer_json(client: TestClient, key: str) -> None:
    missing = client.get("/nothing/here", headers=auth(key))
    assert missing.status_code == 404
    assert missing.json()["detail"]
    wrong = client.put("/v1/generations", headers=auth(key))
    assert wrong.status_code in (404, 405)
    assert wrong.json()["detail"]


def test_broker_down_after_commit_still_answers(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    recorder.fail = True
    response = client.post(f"/{MODEL}", json=PROMPT, headers=auth(key))
    assert response.status_code == 200
    recorder.fail = False
    record = client.get(f"/v1/generations/{response.json()['request_id']}", headers=auth(key))
    assert record.json()["status"] == "pending"  # the dispatcher will submit it
    assert recorder.published == []


def test_healthz_and_readyz(client: TestClient, recorder: RecordingPublisher) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json()["checks"]) == (200, {"database": True, "broker": True})
    recorder.ready = False
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json() == {
        "status": "unavailable",
        "checks": {"database": True, "broker": False},
    }


@pytest.fixture(scope="module")
def db_down_client(api_settings: Settings) -> Iterator[TestClient]:
    settings = api_settings.model_copy(
        update={"database_url": "postgresql://postgres@127.0.0.1:1/nothing"}
    )
    with TestClient(create_app(settings, publisher=RecordingPublisher())) as client:
        yield client


DB_ROUTES: list[tuple[str, str, Any]] = [
    ("POST", f"/{MODEL}", PROMPT),
    ("POST", "/v1/generations", {"model": MODEL, "input": PROMPT}),
    ("GET", "/v1/generations", None),
    ("GET", "/v1/generations/6b1f1f3e-8d4e-4a57-9a1e-1a2b3c4d5e6f", None),
    ("POST", "/v1/generations/6b1f1f3e-8d4e-4a57-9a1e-1a2b3c4d5e6f/cancel", None),
    ("GET", "/fal-ai/flux-pro/requests/6b1f1f3e-8d4e-4a57-9a1e-1a2b3c4d5e6f", None),
    ("GET", "/fal-ai/flux-pro/requests/6b1f1f3e-8d4e-4a57-9a1e-1a2b3c4d5e6f/status", None),
    ("PUT", "/fal-ai/flux-pro/requests/6b1f1f3e-8d4e-4a57-9a1e-1a2b3c4d5e6f/cancel", None),
]


@pytest.mark.parametrize(("method", "path", "body"), DB_ROUTES)
def test_database_down_is_503_json(
    db_down_client: TestClient, method: str, path: str, body: Any
) -> None:
    response = db_down_client.request(method, path, json=body, headers=auth("gq_some-key"))
    assert response.status_code == 503
    assert response.json() == {"detail": "Database unavailable; try again shortly"}
    assert "Traceback" not in response.text


def test_readyz_reports_the_database_down(db_down_client: TestClient) -> None:
    response = db_down_client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": False, "broker": True}
    assert db_down_client.get("/healthz").status_code == 200


def test_importing_the_app_module_connects_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import api.app

    monkeypatch.setenv("GENQUEUE_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nothing")
    monkeypatch.setenv("GENQUEUE_BROKER_URL", "redis://127.0.0.1:1/0")
    module = importlib.reload(api.app)
    app = module.app  # built lazily from the environment, still without connecting
    assert app.state.genqueue.settings.database_url.endswith("/nothing")
    assert app.state.genqueue._engine is None


@pytest.mark.parametrize("depth", [40, 5000, 200_000])
def test_absurdly_nested_json_is_422(client: TestClient, key: str, depth: int) -> None:
    raw = b'{"prompt": "x", "extra": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post(f"/{MODEL}", content=raw, headers=auth(key))
    assert response.status_code in (413, 422), response.text
    if response.status_code == 422:
        assert response.json()["detail"][0]["type"] == "too_deep"
