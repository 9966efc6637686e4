"""``POST /webhooks/fal``: every way a webhook is refused changes nothing; a verified one settles
its job as a poll would, once. The keys come from the simulator's JWKS over real HTTP; the
messages are signed with the simulator's own key (or a stranger's)."""

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.fal.jwks import CachedKeys, JwksCache, KeysNotCached
from genqueue.net import wait_until
from models.keys import create_key
from models.settings import Settings
from models.status import GenerationStatus
from models.tables import Generation
from simulator import Simulator, SimulatorConfig, SimulatorServer
from simulator.app import JWKS_PATH
from tests.api.support import RecordingPublisher, move
from tests.support.generations import create_generation

MODEL = "fal-ai/flux-pro/kontext/text-to-image"
RESULT = {"images": [{"url": "https://v3.fal.media/files/x.png"}], "seed": 7, "prompt": "p"}


@pytest.fixture(scope="module")
def fal() -> Iterator[SimulatorServer]:
    with SimulatorServer(sim=Simulator(SimulatorConfig())) as server:
        yield server


def _client(settings: Settings, fal: SimulatorServer, **fields: Any) -> TestClient:
    configured = settings.model_copy(
        update={"fal_jwks_url": f"{fal.url}{JWKS_PATH}", "fal_jwks_refresh_interval": 0.0, **fields}
    )
    return TestClient(create_app(configured, publisher=RecordingPublisher()))


@pytest.fixture
def hooks(api_settings: Settings, fal: SimulatorServer) -> Iterator[TestClient]:
    """An app of its own, so each test starts with an empty key cache."""
    fal.sim.configure(jwks_down=False)
    with _client(api_settings, fal) as client:
        yield client


def _job(sessions: sessionmaker[Session], **values: Any) -> tuple[uuid.UUID, str]:
    """A generation upstream (``queued``) under a fresh request id."""
    request_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    with sessions.begin() as session:
        key, _ = create_key(session, name=f"wh-{request_id[:8]}")
        gen = create_generation(
            session,
            tenant_id=key.tenant_id,
            model=MODEL,
            input={"prompt": "p"},
            now=now,
            deadline_seconds=600,
            submit_grace_seconds=2,
        )
        gen_id = gen.id
    move(
        sessions,
        str(gen_id),
        GenerationStatus.QUEUED,
        upstream_request_id=request_id,
        submitted_at=now - timedelta(seconds=3),
        next_poll_at=now + timedelta(seconds=60),
        expects_webhook=True,
        **values,
    )
    return gen_id, request_id


def _body(request_id: str, status: str = "OK", payload: Any = RESULT, **extra: Any) -> bytes:
    doc = {"request_id": request_id, "gateway_request_id": request_id, "status": status}
    return json.dumps({**doc, "payload": payload, **extra}).encode()


def _signed(
    fal: SimulatorServer,
    request_id: str,
    body: bytes,
    *,
    at: float | None = None,
    key: Ed25519PrivateKey | None = None,
) -> dict[str, str]:
    stamp = round(time.time() if at is None else at)
    return fal.sim.webhook_signer.headers(request_id, body, timestamp=stamp, key=key)


def _post(client: TestClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(
        "/webhooks/fal", content=body, headers={**headers, "Content-Type": "application/json"}
    )


def _row(sessions: sessionmaker[Session], gen_id: uuid.UUID) -> Generation:
    with sessions() as session:
        gen = session.get(Generation, gen_id)
        assert gen is not None
        _ = gen.events
        return gen


def _unchanged(sessions: sessionmaker[Session], gen_id: uuid.UUID) -> None:
    gen = _row(sessions, gen_id)
    assert (gen.status, gen.result, gen.error) == ("queued", None, None)
    assert [e.kind for e in gen.events if e.kind == "upstream_webhook"] == []


def _flip(signature: str) -> str:
    raw = bytearray(bytes.fromhex(signature))
    raw[10] ^= 0x01
    return raw.hex()


@pytest.mark.parametrize(
    ("forge", "status", "names"),
    [
        ("no_headers", 401, "missing webhook header(s): X-Fal-Webhook-Request-Id"),
        ("no_signature", 401, "missing webhook header(s): X-Fal-Webhook-Signature"),
        ("bad_signature", 401, "does not verify"),
        ("not_hex", 401, "not a hex ED25519 signature"),
        ("wrong_key", 401, "does not verify"),
        ("stale", 401, "s old; at most 300 s"),
        ("future", 401, "s in the future; at most 300 s"),
        ("altered_body", 401, "does not verify"),
        ("other_request", 401, "does not verify"),
    ],
)
def test_a_webhook_not_proven_to_be_fals_is_refused_and_changes_nothing(
    hooks: TestClient,
    fal: SimulatorServer,
    pg_sessions: sessionmaker[Session],
    forge: str,
    status: int,
    names: str,
) -> None:
    gen_id, request_id = _job(pg_sessions)
    body = _body(request_id)
    headers = _signed(fal, request_id, body)
    if forge == "no_headers":
        headers = {}
    elif forge == "no_signature":
        del headers["X-Fal-Webhook-Signature"]
    elif forge == "bad_signature":
        headers["X-Fal-Webhook-Signature"] = _flip(headers["X-Fal-Webhook-Signature"])
    elif forge == "not_hex":
        headers["X-Fal-Webhook-Signature"] = "zz" * 64
    elif forge == "wrong_key":
        headers = _signed(fal, request_id, body, key=Ed25519PrivateKey.generate())
    elif forge == "stale":
        headers = _signed(fal, request_id, body, at=time.time() - 301)
    elif forge == "future":
        headers = _signed(fal, request_id, body, at=time.time() + 301)
    elif forge == "altered_body":
        body = _body(request_id, payload={**RESULT, "seed": 8})
    elif forge == "other_request":  # another job's genuine webhook, re-addressed to this one
        _, other_id = _job(pg_sessions)
        headers = {**_signed(fal, other_id, body), "X-Fal-Webhook-Request-Id": request_id}
    answer = _post(hooks, body, headers)
    assert answer.status_code == status
    assert names in answer.json()["detail"]
    _unchanged(pg_sessions, gen_id)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json", "the body is not JSON"),
        (b"[1]", "the body must be a JSON object"),
        (b'{"request_id": "someone-else", "status": "OK"}', "is not the signed"),
        (None, "status must be 'OK' or 'ERROR'"),
    ],
)
def test_a_signed_but_malformed_body_is_a_400_and_changes_nothing(
    hooks: TestClient,
    fal: SimulatorServer,
    pg_sessions: sessionmaker[Session],
    body: bytes | None,
    detail: str,
) -> None:
    gen_id, request_id = _job(pg_sessions)
    raw = body if body is not None else _body(request_id, status="DONE")
    answer = _post(hooks, raw, _signed(fal, request_id, raw))
    assert answer.status_code == 400
    assert detail in answer.json()["detail"]
    _unchanged(pg_sessions, gen_id)


def test_a_verified_ok_completes_the_job_once(
    hooks: TestClient, fal: SimulatorServer, pg_sessions: sessionmaker[Session]
) -> None:
    gen_id, request_id = _job(pg_sessions)
    body = _body(request_id)
    answer = _post(hooks, body, _signed(fal, request_id, body))
    assert (answer.status_code, answer.json()) == (200, {"outcome": "completed"})
    gen = _row(pg_sessions, gen_id)
    assert (gen.status, gen.result, gen.error, gen.next_poll_at) == (
        "completed",
        RESULT,
        None,
        None,
    )
    assert gen.run_seconds is not None
    assert gen.run_seconds >= 3
    assert gen.media_status == "pending"  # its image is copied by the media tick
    completed_at = gen.completed_at

    again = _post(hooks, body, _signed(fal, request_id, body))  # fal retried, or sent it twice
    assert (again.status_code, again.json()) == (200, {"outcome": "already_ended"})
    gen = _row(pg_sessions, gen_id)
    assert (gen.status, gen.result, gen.completed_at) == ("completed", RESULT, completed_at)
    metrics = hooks.get("/metrics").text  # the webhook ended it once: counted once
    assert 'genqueue_time_to_terminal_seconds_count{status="completed"} 1.0' in metrics
    assert 'genqueue_upstream_webhooks_total{outcome="already_ended"} 1.0' in metrics
    kinds = [(e.kind, (e.detail or {}).get("outcome")) for e in gen.events]
    assert kinds[-3:] == [
        ("completed", None),
        ("upstream_webhook", "completed"),
        ("upstream_webhook", "already_ended"),
    ]


def test_an_error_fails_the_job_with_upstreams_body(
    hooks: TestClient, fal: SimulatorServer, pg_sessions: sessionmaker[Session]
) -> None:
    gen_id, request_id = _job(pg_sessions)
    payload = {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "missing"}]}
    body = _body(request_id, "ERROR", payload, error="Invalid status code: 422")
    answer = _post(hooks, body, _signed(fal, request_id, body))
    assert answer.json() == {"outcome": "failed"}
    gen = _row(pg_sessions, gen_id)
    assert gen.status == "failed"
    assert gen.error == {
        "type": "upstream_error",
        "message": "Invalid status code: 422",
        "http_status": 422,
        "error_type": "missing",
        "body": payload,
    }


def test_a_cancelled_error_cancels_a_job_whose_cancel_was_asked(
    hooks: TestClient, fal: SimulatorServer, pg_sessions: sessionmaker[Session]
) -> None:
    asked = datetime.now(UTC)
    gen_id, request_id = _job(pg_sessions, cancel_requested_at=asked, cancel_sent_at=asked)
    payload = {"detail": "Request cancelled", "error_type": "client_cancelled"}
    body = _body(request_id, "ERROR", payload, error="Invalid status code: 499")
    assert _post(hooks, body, _signed(fal, request_id, body)).json() == {"outcome": "cancelled"}
    gen = _row(pg_sessions, gen_id)
    assert gen.status == "cancelled"
    assert gen.error is not None
    assert (gen.error["type"], gen.error["http_status"]) == ("cancelled", 499)


@pytest.mark.parametrize("extra", [{"payload": None}, {"payload_error": "too large"}])
def test_ok_without_a_payload_makes_the_poll_due_now(
    hooks: TestClient,
    fal: SimulatorServer,
    pg_sessions: sessionmaker[Session],
    extra: dict[str, Any],
) -> None:
    gen_id, request_id = _job(pg_sessions)
    body = _body(request_id, **({"payload": None} | extra))
    before = datetime.now(UTC)
    assert _post(hooks, body, _signed(fal, request_id, body)).json() == {"outcome": "fetch"}
    gen = _row(pg_sessions, gen_id)
    assert gen.status == "queued"
    assert gen.next_poll_at is not None
    assert gen.next_poll_at <= datetime.now(UTC)
    assert gen.next_poll_at >= before


def test_an_unknown_request_id_is_a_200_and_counted(
    hooks: TestClient, fal: SimulatorServer
) -> None:
    request_id = str(uuid.uuid4())
    body = _body(request_id)
    answer = _post(hooks, body, _signed(fal, request_id, body))
    assert (answer.status_code, answer.json()) == (200, {"outcome": "unknown_request"})
    forged = _post(hooks, body, {})
    assert forged.status_code == 401
    metrics = hooks.get("/metrics").text
    assert 'genqueue_upstream_webhooks_total{outcome="unknown_request"} 1.0' in metrics
    assert 'genqueue_upstream_webhooks_total{outcome="refused_missing_headers"} 1.0' in metrics


def test_with_the_jwks_down_webhooks_get_503_and_change_nothing(
    hooks: TestClient, fal: SimulatorServer, pg_sessions: sessionmaker[Session]
) -> None:
    fal.sim.configure(jwks_down=True)
    gen_id, request_id = _job(pg_sessions)
    body = _body(request_id)
    answer = _post(hooks, body, _signed(fal, request_id, body))
    assert answer.status_code == 503
    assert "cannot check the signature now" in answer.json()["detail"]
    _unchanged(pg_sessions, gen_id)
    fal.sim.configure(jwks_down=False)  # fal tries again; a failing key server is asked again
    wait_until(  # at most once a second
        lambda: _post(hooks, body, _signed(fal, request_id, body)).status_code == 200,
        5,
        what="the webhook accepted once the JWKS answers",
    )
    assert _row(pg_sessions, gen_id).status == "completed"


def test_a_rotated_key_is_fetched_when_a_signature_fails_the_cached_keys(
    hooks: TestClient, fal: SimulatorServer, pg_sessions: sessionmaker[Session]
) -> None:
    gen_id, request_id = _job(pg_sessions)
    _, first_id = _job(pg_sessions)
    first = _body(first_id)
    assert _post(hooks, first, _signed(fal, first_id, first)).json() == {"outcome": "completed"}
    fal.sim.rotate_webhook_key()  # the cache still holds the old key only
    body = _body(request_id)
    assert _post(hooks, body, _signed(fal, request_id, body)).json() == {"outcome": "completed"}
    assert _row(pg_sessions, gen_id).status == "completed"


def test_refetches_for_unknown_keys_are_rate_limited(
    api_settings: Settings, fal: SimulatorServer, pg_sessions: sessionmaker[Session]
) -> None:
    fal.sim.configure(jwks_down=False)
    with _client(api_settings, fal, fal_jwks_refresh_interval=3600.0) as client:
        state = client.app.state.genqueue  # type: ignore[attr-defined]
        _, request_id = _job(pg_sessions)
        body = _body(request_id)
        stranger = Ed25519PrivateKey.generate()
        for _ in range(20):
            answer = _post(client, body, _signed(fal, request_id, body, key=stranger))
            assert answer.status_code == 401
        assert state.fal_keys.fetches == 1
        metrics = client.get("/metrics").text  # each refusal counted once, not per pass
        assert 'genqueue_upstream_webhooks_total{outcome="refused_signature"} 20.0' in metrics


def test_cached_keys_never_fetch(fal: SimulatorServer) -> None:
    """What the event loop checks signatures with: the cache's fresh keys, or an exception
    that sends the request to a worker thread (where the cache may fetch)."""
    fal.sim.configure(jwks_down=False)
    cache = JwksCache(url=f"{fal.url}{JWKS_PATH}", ttl=60.0)
    try:
        cached = CachedKeys(cache)
        with pytest.raises(KeysNotCached):
            cached.keys()  # nothing fetched yet
        assert cache.fetches == 0
        assert len(cache.keys()) == 1  # the worker thread's path fetches
        assert len(cached.keys()) == 1
        with pytest.raises(KeysNotCached):
            cached.refresh()  # a failed check never refetches on the loop
        assert cache.fetches == 1
    finally:
        cache.close()


def test_with_the_database_down_a_verified_webhook_gets_503(
    api_settings: Settings, fal: SimulatorServer
) -> None:
    fal.sim.configure(jwks_down=False)
    down = "postgresql://postgres@127.0.0.1:1/nothing"
    with _client(api_settings, fal, database_url=down, db_connect_timeout=1.0) as client:
        request_id = str(uuid.uuid4())
        body = _body(request_id)
        answer = _post(client, body, _signed(fal, request_id, body))
    assert answer.status_code == 503  # not recorded: fal tries again
    assert answer.headers["retry-after"] == "5"
    assert answer.json() == {"detail": "Database unavailable; try again shortly"}


def test_the_shortcut_answers_webhooks_and_the_metrics_count_them_by_route(
    hooks: TestClient, fal: SimulatorServer, pg_sessions: sessionmaker[Session]
) -> None:
    """``POST /webhooks/fal`` skips FastAPI's router: a router that cannot answer it changes
    nothing, and the request is still counted under the route's template."""
    app = hooks.app
    router = app.router  # type: ignore[attr-defined]
    routes = list(router.routes)
    gen_id, request_id = _job(pg_sessions)
    body = _body(request_id)
    try:
        router.routes = [r for r in routes if getattr(r, "path", None) != "/webhooks/fal"]
        answer = _post(hooks, body, _signed(fal, request_id, body))
        refused = _post(hooks, body, {})
    finally:
        router.routes = routes
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"outcome": "completed"}
    assert refused.status_code == 401
    assert _row(pg_sessions, gen_id).status == "completed"
    metrics = hooks.get("/metrics").text
    counted = 'genqueue_http_requests_total{code="%s",method="POST",route="/webhooks/fal"} 1.0'
    assert counted % "200" in metrics
    assert counted % "401" in metrics


@pytest.mark.parametrize("chunked", [False, True])
def test_a_webhook_larger_than_the_body_cap_is_a_413_and_changes_nothing(
    api_settings: Settings, fal: SimulatorServer, pg_sessions: sessionmaker[Session], chunked: bool
) -> None:
    """Even signed by fal's key: the body is refused while it is read (with or without a
    ``Content-Length``), before its signature costs anything, and the refusal is counted."""
    fal.sim.configure(jwks_down=False)
    limit = 2048
    gen_id, request_id = _job(pg_sessions)
    body = _body(request_id, payload={**RESULT, "prompt": "x" * limit})
    headers = {**_signed(fal, request_id, body), "Content-Type": "application/json"}
    content: bytes | Iterator[bytes] = body
    if chunked:
        content = iter([body[i : i + 512] for i in range(0, len(body), 512)])
    with _client(api_settings, fal, max_body_bytes=limit) as client:
        answer = client.post("/webhooks/fal", content=content, headers=headers)
        metrics = client.get("/metrics").text
    assert answer.status_code == 413
    assert answer.json() == {"detail": f"Request body is larger than the limit of {limit} bytes"}
    assert 'genqueue_upstream_webhooks_total{outcome="refused_too_large"} 1.0' in metrics
    _unchanged(pg_sessions, gen_id)
