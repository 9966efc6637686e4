"""The fal-compatible surface: the submit handle, status per state, results, cancel, stream."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from models import tasknames
from models.settings import Settings
from models.status import GenerationStatus
from tests.api.support import MODEL, RecordingPublisher, auth, complete, fail, move

PROMPT = {"prompt": "a lighthouse"}
OUTPUT = {
    "images": [
        {
            "url": "https://v3.fal.media/files/x.jpg",
            "width": 1024,
            "height": 1024,
            "content_type": "image/jpeg",
        }
    ],
    "timings": {"inference": 1.2},
    "seed": 42,
    "has_nsfw_concepts": [False],
    "prompt": "a lighthouse",
}


def _submit(
    client: TestClient, key: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    response = client.post(
        f"/{MODEL}", json=PROMPT, headers={**auth(key), **(headers or {})}, **kwargs
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_submit_answers_the_seed_shape_and_publishes_after_commit(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    body = _submit(client, key)
    rid = body["request_id"]
    base = f"http://testserver/fal-ai/flux-pro/requests/{rid}"
    assert body == {
        "status": "IN_QUEUE",
        "request_id": rid,
        "response_url": base,
        "status_url": f"{base}/status",
        "cancel_url": f"{base}/cancel",
        "logs": None,
        "metrics": {},
        "queue_position": body["queue_position"],
    }
    assert isinstance(body["queue_position"], int)
    assert recorder.published == [(tasknames.SUBMIT_MANY, [[rid]])]


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.com"}


def test_a_client_cannot_rewrite_the_urls_with_forwarded_headers(
    client: TestClient, key: str
) -> None:
    body = _submit(client, key, headers=FORWARDED)
    for name in ("status_url", "response_url", "cancel_url"):
        assert body[name].startswith("http://testserver/fal-ai/flux-pro/requests/"), body
    status = client.get(body["status_url"], headers={**auth(key), **FORWARDED}).json()
    assert status["status_url"] == body["status_url"]


def test_urls_follow_forwarded_headers_of_a_trusted_proxy(
    api_settings: Any, recorder: RecordingPublisher, key: str
) -> None:
    from api.app import create_app

    settings = api_settings.model_copy(update={"trusted_proxies": "10.0.0.0/8, 192.0.2.1"})
    app = create_app(settings, publisher=recorder)
    with TestClient(app, client=("10.1.2.3", 40000)) as proxy:
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "gq.example.com"}
        body = _submit(proxy, key, headers=forwarded)
        assert body["status_url"].startswith("https://gq.example.com/fal-ai/flux-pro/requests/")
        spoofed = _submit(proxy, key, headers={"X-Forwarded-Host": "evil/host"})
        assert spoofed["status_url"].startswith("http://testserver/")
    with TestClient(app, client=("203.0.113.9", 40000)) as stranger:
        body = _submit(stranger, key, headers=FORWARDED)
        assert body["status_url"].startswith("http://testserver/")


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(ValidationError, match=r"not an IP address or network: 'proxy\.local'"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.local")


def test_urls_use_the_configured_public_url(
    api_settings: Any, recorder: RecordingPublisher, key: str
) -> None:
    from api.app import create_app

    settings = api_settings.model_copy(update={"public_url": "https://api.example.org"})
    with TestClient(create_app(settings, publisher=recorder)) as other:
        body = _submit(other, key, headers={"X-Forwarded-Host": "ignored.test"})
    assert (
        body["response_url"]
        == f"https://api.example.org/fal-ai/flux-pro/requests/{body['request_id']}"
    )


def test_queue_position_counts_older_pending_generations(client: TestClient, key: str) -> None:
    first = _submit(client, key)
    second = _submit(client, key)
    assert second["queue_position"] == first["queue_position"] + 1


def test_queue_position_counts_only_the_callers_own_tenant(
    client: TestClient, key: str, other_key: str
) -> None:
    """Tenant A's backlog is not B's business: B's first request is first in B's line, at
    submit and on its status, however many of A's wait; A's positions count A's alone."""
    a_handles = [_submit(client, key) for _ in range(4)]
    assert [h["queue_position"] for h in a_handles] == [0, 1, 2, 3]
    b_handle = _submit(client, other_key)
    assert b_handle["queue_position"] == 0
    b_status = _status(client, other_key, b_handle["request_id"]).json()
    assert (b_status["status"], b_status["queue_position"]) == ("IN_QUEUE", 0)
    a_status = _status(client, key, a_handles[3]["request_id"]).json()
    assert a_status["queue_position"] == 3
    assert _submit(client, key)["queue_position"] == 4, "B's request is not in A's line"


def _status(client: TestClient, key: str, rid: str, suffix: str = "/status", **params: Any) -> Any:
    return client.get(f"/fal-ai/flux-pro/requests/{rid}{suffix}", headers=auth(key), params=params)


def test_status_through_the_life_of_a_request(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    rid = _submit(client, key)["request_id"]
    queued = _status(client, key, rid)
    assert queued.status_code == 202
    assert queued.json()["status"] == "IN_QUEUE"
    assert queued.json()["logs"] is None
    assert queued.json()["metrics"] == {}

    move(pg_sessions, rid, GenerationStatus.QUEUED, queue_position=7, upstream_request_id="up-1")
    upstream_queue = _status(client, key, rid).json()
    assert (upstream_queue["status"], upstream_queue["queue_position"]) == ("IN_QUEUE", 7)

    move(pg_sessions, rid, GenerationStatus.RUNNING)
    running = _status(client, key, rid)
    assert running.status_code == 202
    assert running.json()["status"] == "IN_PROGRESS"
    assert "queue_position" not in running.json()
    assert running.json()["logs"] is None

    complete(pg_sessions, rid, OUTPUT)
    done = _status(client, key, rid)
    assert done.status_code == 200
    assert done.json()["status"] == "COMPLETED"
    assert done.json()["metrics"] == {"inference_time": 1.25}
    assert "error" not in done.json()
    result = client.get(f"/fal-ai/flux-pro/requests/{rid}", headers=auth(key))
    assert (result.status_code, result.json()) == (200, OUTPUT)


@pytest.mark.parametrize("flag", ["1", "true"])
def test_status_logs_on(client: TestClient, key: str, flag: str) -> None:
    rid = _submit(client, key)["request_id"]
    logs = _status(client, key, rid, logs=flag).json()["logs"]
    assert logs[0]["message"].startswith("created")
    assert set(logs[0]) == {"message", "level", "source", "timestamp"}


@pytest.mark.parametrize("flag", ["0", "false"])
def test_status_logs_off(client: TestClient, key: str, flag: str) -> None:
    rid = _submit(client, key)["request_id"]
    assert _status(client, key, rid, logs=flag).json()["logs"] is None


def test_status_logs_flag_is_validated(client: TestClient, key: str) -> None:
    rid = _submit(client, key)["request_id"]
    response = _status(client, key, rid, logs="maybe")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "logs"]


def test_trailing_slashes_are_accepted(client: TestClient, key: str) -> None:
    rid = _submit(client, key)["request_id"]
    assert _status(client, key, rid, "/status/").status_code == 202
    assert _status(client, key, rid, "/").status_code == 400


def test_result_before_completion_is_400(client: TestClient, key: str) -> None:
    rid = _submit(client, key)["request_id"]
    response = client.get(f"/fal-ai/flux-pro/requests/{rid}", headers=auth(key))
    assert response.status_code == 400
    assert response.json()["detail"] == "Request is still in progress"


def test_unknown_request_is_404(client: TestClient, key: str) -> None:
    rid = "6b1f1f3e-8d4e-4a57-9a1e-1a2b3c4d5e6f"
    assert client.get(f"/fal-ai/flux-pro/requests/{rid}", headers=auth(key)).status_code == 404
    assert _status(client, key, rid).json() == {"detail": "Request not found"}


def test_upstream_failure_is_completed_with_error_and_result_is_upstreams_answer(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    rid = _submit(client, key)["request_id"]
    upstream_body = {
        "detail": [
            {
                "loc": ["body", "prompt"],
                "msg": "content flagged",
                "type": "content_policy_violation",
            }
        ]
    }
    fail(
        pg_sessions,
        rid,
        "upstream_error",
        "content flagged",
        http_status=422,
        body=upstream_body,
        error_type="content_policy_violation",
    )
    status = _status(client, key, rid)
    assert status.status_code == 200
    assert status.json()["status"] == "COMPLETED"
    assert status.json()["error"] == "content flagged"
    assert status.json()["error_type"] == "content_policy_violation"
    result = client.get(f"/fal-ai/flux-pro/requests/{rid}", headers=auth(key))
    assert (result.status_code, result.json()) == (422, upstream_body)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("deadline_exceeded", 504),
        ("submit_ambiguous", 502),
        ("retries_exhausted", 503),
        ("result_unavailable", 502),
    ],
)
def test_genqueues_own_failures_answer_in_fal_request_error_form(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session], kind: str, code: int
) -> None:
    rid = _submit(client, key)["request_id"]
    fail(pg_sessions, rid, kind, f"{kind} happened", http_status=404, body={"detail": "gone"})
    result = client.get(f"/fal-ai/flux-pro/requests/{rid}", headers=auth(key))
    assert result.status_code == code
    assert result.json() == {"detail": f"{kind} happened", "error_type": kind}
    assert result.headers["x-fal-error-type"] == kind
    assert _status(client, key, rid).json()["error_type"] == kind


def test_cancel_of_a_pending_request(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    rid = _submit(client, key)["request_id"]
    cancel = client.put(f"/fal-ai/flux-pro/requests/{rid}/cancel", headers=auth(key))
    assert (cancel.status_code, cancel.json()) == (202, {"status": "CANCELLATION_REQUESTED"})
    assert recorder.tasks_for(rid) == [tasknames.SUBMIT_MANY]  # nothing upstream to cancel
    status = _status(client, key, rid).json()
    assert (status["status"], status["error_type"]) == ("COMPLETED", "cancelled")
    result = client.get(f"/fal-ai/flux-pro/requests/{rid}", headers=auth(key))
    assert result.status_code == 499
    assert result.json()["error_type"] == "cancelled"
    again = client.put(f"/fal-ai/flux-pro/requests/{rid}/cancel", headers=auth(key))
    assert (again.status_code, again.json()["status"]) == (400, "ALREADY_COMPLETED")


def test_cancel_of_a_running_request_publishes_the_cancel_task(
    client: TestClient,
    key: str,
    recorder: RecordingPublisher,
    pg_sessions: sessionmaker[Session],
) -> None:
    rid = _submit(client, key)["request_id"]
    move(pg_sessions, rid, GenerationStatus.RUNNING, upstream_request_id="up-2")
    cancel = client.put(f"/fal-ai/flux-pro/requests/{rid}/cancel/", headers=auth(key))
    assert cancel.status_code == 202
    assert recorder.tasks_for(rid) == [tasknames.SUBMIT_MANY, tasknames.CANCEL]
    assert _status(client, key, rid).json()["status"] == "IN_PROGRESS"
    # a second cancel is accepted again but publishes nothing new
    assert (
        client.put(f"/fal-ai/flux-pro/requests/{rid}/cancel", headers=auth(key)).status_code == 202
    )
    assert recorder.tasks_for(rid) == [tasknames.SUBMIT_MANY, tasknames.CANCEL]


def test_cancel_of_an_unknown_request(client: TestClient, key: str) -> None:
    response = client.put(
        "/fal-ai/flux-pro/requests/6b1f1f3e-8d4e-4a57-9a1e-1a2b3c4d5e6f/cancel", headers=auth(key)
    )
    assert response.status_code == 404
    assert response.json()["status"] == "NOT_FOUND"
    assert response.json()["detail"]


def test_unknown_model_is_404_naming_the_supported_ones(client: TestClient, key: str) -> None:
    response = client.post("/fal-ai/flux/dev", json=PROMPT, headers=auth(key))
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "fal-ai/flux/dev" in detail
    for model in (
        "fal-ai/flux-pro/kontext/text-to-image",
        "fal-ai/flux-pro/kontext/max",
        "fal-ai/flux-pro/kontext",
    ):
        assert model in detail


def test_submit_with_a_trailing_slash_is_redirected(client: TestClient, key: str) -> None:
    response = client.post(f"/{MODEL}/", json=PROMPT, headers=auth(key), follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == f"http://testserver/{MODEL}"
    followed = client.post(f"/{MODEL}/", json=PROMPT, headers=auth(key))
    assert followed.status_code == 200
    assert followed.json()["status"] == "IN_QUEUE"


def test_fal_webhook_is_stored_and_gateway_id_returned(client: TestClient, key: str) -> None:
    body = _submit(client, key, params={"fal_webhook": "https://hooks.example.com/fal"})
    assert body["gateway_request_id"] == body["request_id"]
    record = client.get(f"/v1/generations/{body['request_id']}", headers=auth(key)).json()
    assert record["webhook_url"] == "https://hooks.example.com/fal"


def _sse_events(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :]) for line in text.splitlines() if line.startswith("data: ")
    ]


def test_status_stream_ends_after_completed(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    rid = _submit(client, key)["request_id"]
    complete(pg_sessions, rid, OUTPUT)
    with client.stream(
        "GET",
        f"/fal-ai/flux-pro/requests/{rid}/status/stream",
        headers=auth(key),
        params={"logs": "1"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse_events(response.read().decode())
    assert [e["status"] for e in events] == ["COMPLETED"]
    assert events[0]["logs"]


def test_status_stream_follows_changes(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    import threading
    import time

    rid = _submit(client, key)["request_id"]

    def advance() -> None:
        time.sleep(0.3)
        move(pg_sessions, rid, GenerationStatus.RUNNING)
        time.sleep(0.5)
        complete(pg_sessions, rid, OUTPUT)

    worker = threading.Thread(target=advance)
    worker.start()
    with client.stream(
        "GET", f"/fal-ai/flux-pro/requests/{rid}/status/stream", headers=auth(key)
    ) as response:
        text = response.read().decode()
    worker.join()
    statuses = [e["status"] for e in _sse_events(text)]
    assert statuses == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert ": ping" in text
