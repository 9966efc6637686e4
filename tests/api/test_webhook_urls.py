"""A ``webhook_url`` (native) or ``fal_webhook`` (fal surface) is checked in full at create: one
that does not parse, is too long, is not http(s), carries userinfo, or names a refused address
in any spelling gets 422 naming the field, and nothing is stored or published. A name is left
to the check at delivery (tests/worker/test_webhook_destinations.py)."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from models.settings import Settings
from models.tables import Generation
from tests.api.support import MODEL, RecordingPublisher, auth

PROMPT = {"prompt": "a lighthouse at dusk"}
REFUSED = [
    "http://127.0.0.1/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://localhost:8000/hook",
    "http://api.localhost/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[fe80::1]/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://[fd12:3456::1]/hook",
    "http://224.0.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://240.0.0.1/hook",
    "http://user:pass@hooks.example.com/hook",
    "http://hooks.example.com@127.0.0.1/hook",
    "http://[::1",
    "https://hooks.example.com/" + "x" * 2048,
    "ftp://hooks.example.com/hook",
]


def _stored(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Generation)) or 0)


@pytest.mark.parametrize("url", REFUSED)
def test_a_refused_webhook_url_is_422_and_nothing_is_stored(
    client: TestClient,
    key: str,
    pg_sessions: sessionmaker[Session],
    recorder: RecordingPublisher,
    url: str,
) -> None:
    before = _stored(pg_sessions)
    native = client.post(
        "/v1/generations",
        json={"model": MODEL, "input": PROMPT, "webhook_url": url},
        headers=auth(key),
    )
    fal = client.post(f"/{MODEL}", params={"fal_webhook": url}, json=PROMPT, headers=auth(key))
    assert native.status_code == 422, native.text
    assert native.json()["detail"][0]["loc"] == ["body", "webhook_url"]
    assert fal.status_code == 422, fal.text
    assert fal.json()["detail"][0]["loc"] == ["query", "fal_webhook"]
    assert _stored(pg_sessions) == before
    assert recorder.published == []


def test_the_refusal_says_why(client: TestClient, key: str) -> None:
    answer = client.post(
        "/v1/generations",
        json={"model": MODEL, "input": PROMPT, "webhook_url": "http://169.254.169.254/"},
        headers=auth(key),
    )
    assert "Cloud metadata" in answer.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/x?y=1",
        "http://hooks.example.com:8080/x",
        "https://93.184.215.14/",
    ],
)
def test_public_destinations_are_accepted(client: TestClient, key: str, url: str) -> None:
    answer = client.post(
        "/v1/generations",
        json={"model": MODEL, "input": PROMPT, "webhook_url": url},
        headers=auth(key),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["webhook_url"] == url


def test_allow_private_accepts_private_addresses_but_not_userinfo(
    api_settings: Settings, key: str
) -> None:
    settings = api_settings.model_copy(update={"webhook_allow_private": True})
    with TestClient(create_app(settings, publisher=RecordingPublisher())) as client:

        def create(url: str) -> int:
            body = {"model": MODEL, "input": PROMPT, "webhook_url": url}
            return int(client.post("/v1/generations", json=body, headers=auth(key)).status_code)

        assert create("http://127.0.0.1:9000/hook") == 201
        assert create("http://localhost:9000/hook") == 201
        assert create("http://[::1]:9000/hook") == 201
        assert create("http://u:p@127.0.0.1:9000/hook") == 422
        assert create("http://[::1") == 422


def test_allowed_hosts_and_networks(api_settings: Settings, key: str) -> None:
    settings = api_settings.model_copy(
        update={
            "webhook_allowed_hosts": ("*.corp.example",),
            "webhook_allowed_networks": ("10.20.0.0/16",),
        }
    )
    with TestClient(create_app(settings, publisher=RecordingPublisher())) as client:

        def create(url: str) -> int:
            body = {"model": MODEL, "input": PROMPT, "webhook_url": url}
            return int(client.post("/v1/generations", json=body, headers=auth(key)).status_code)

        assert create("http://hooks.corp.example:9000/hook") == 201
        assert create("http://10.20.3.4/hook") == 201
        assert create("http://10.21.3.4/hook") == 422
        assert create("http://127.0.0.1/hook") == 422
