"""The native surface: records, events, listing with filters and cursors, cancel, idempotency."""

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from models import tasknames
from models.status import GenerationStatus
from models.vocabulary import EventKind
from tests.api.support import EDIT_MODEL, MODEL, RecordingPublisher, auth, complete, move

PROMPT = {"prompt": "a lighthouse"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")
RECORD_FIELDS = {
    "id",
    "model",
    "status",
    "priority",
    "estimated_cost",
    "final_cost",
    "input",
    "upstream_request_id",
    "queue_position",
    "result",
    "error",
    "cancel_requested_at",
    "created_at",
    "submitted_at",
    "started_at",
    "completed_at",
    "submit_attempts",
    "poll_count",
    "events",
    "local_queue_position",
    "webhook_url",
    "idempotency_key",
    "deadline_at",
    "media_status",
}


def _create(
    client: TestClient, key: str, *, headers: dict[str, Any] | None = None, **body: Any
) -> Any:
    payload = {"model": MODEL, "input": PROMPT, **body}
    return client.post("/v1/generations", json=payload, headers={**auth(key), **(headers or {})})


def test_create_answers_201_with_the_full_record(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    response = _create(client, key, webhook_url="https://hooks.example.com/x")
    assert response.status_code == 201, response.text
    record = response.json()
    assert set(record) == RECORD_FIELDS
    assert record["status"] == "pending"
    assert record["model"] == MODEL
    assert record["input"]["prompt"] == "a lighthouse"
    assert record["input"]["num_images"] == 1
    assert record["webhook_url"] == "https://hooks.example.com/x"
    assert ISO_UTC.match(record["created_at"])
    assert ISO_UTC.match(record["deadline_at"])
    assert [e["kind"] for e in record["events"]] == ["created"]
    assert ISO_UTC.match(record["events"][0]["at"])
    assert recorder.published == [(tasknames.SUBMIT_MANY, [[record["id"]]])]


def test_the_create_answer_is_the_record_as_stored(client: TestClient, key: str) -> None:
    """The answer is built from the values inserted, not read back: it must equal a GET."""
    for extra in ({}, {"webhook_url": "https://hooks.example.com/y"}):
        created = _create(client, key, headers={"Idempotency-Key": f"same {extra}"}, **extra)
        assert created.status_code == 201, created.text
        stored = client.get(f"/v1/generations/{created.json()['id']}", headers=auth(key))
        assert created.json() == stored.json()


def test_the_id_is_the_fal_request_id(client: TestClient, key: str) -> None:
    rid = client.post(f"/{MODEL}", json=PROMPT, headers=auth(key)).json()["request_id"]
    record = client.get(f"/v1/generations/{rid}", headers=auth(key)).json()
    assert record["id"] == rid
    gid = _create(client, key).json()["id"]
    status = client.get(f"/fal-ai/flux-pro/requests/{gid}/status", headers=auth(key))
    assert status.json()["request_id"] == gid


def test_get_shows_progress_and_every_event(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    gid = _create(client, key).json()["id"]
    move(
        pg_sessions,
        gid,
        GenerationStatus.QUEUED,
        event=EventKind.SUBMITTED,
        queue_position=3,
        upstream_request_id="up-9",
        submitted_at=datetime.now(UTC),
        submit_attempts=1,
    )
    move(
        pg_sessions, gid, GenerationStatus.QUEUED, event=EventKind.QUEUE_POSITION, queue_position=1
    )
    complete(pg_sessions, gid, {"images": [], "seed": 1})
    record = client.get(f"/v1/generations/{gid}", headers=auth(key)).json()
    assert record["status"] == "completed"
    assert record["upstream_request_id"] == "up-1"
    assert record["result"] == {"images": [], "seed": 1}
    assert [(e["kind"], e["queue_position"]) for e in record["events"]] == [
        ("created", None),
        ("submitted", 3),
        ("queue_position", 1),
        ("completed", None),
    ]
    for field in ("completed_at", "submitted_at", "started_at"):
        assert ISO_UTC.match(record[field]), field


def test_list_filters_and_pages(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    ids = [_create(client, key).json()["id"] for _ in range(5)]
    edit = _create(
        client, key, model=EDIT_MODEL, input={**PROMPT, "image_url": "https://x.test/a.png"}
    ).json()["id"]
    move(pg_sessions, ids[0], GenerationStatus.RUNNING)

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/generations", params=params, headers=auth(key)).json()
        seen += [item["id"] for item in page["items"]]
        assert len(page["items"]) <= 2
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [edit, *reversed(ids)]
    assert "events" not in page["items"][0] if page["items"] else True

    def listed(**params: Any) -> list[str]:
        body = client.get("/v1/generations", params=params, headers=auth(key)).json()
        return [item["id"] for item in body["items"]]

    assert listed(status="running") == [ids[0]]
    assert set(listed(status=["running", "pending"])) == {*ids, edit}
    assert listed(model=EDIT_MODEL) == [edit]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert listed(created_after=future) == []
    assert set(listed(created_before=future)) == {*ids, edit}


def test_list_rejects_bad_parameters(client: TestClient, key: str) -> None:
    for params in (
        {"status": "done"},
        {"limit": 0},
        {"limit": 201},
        {"cursor": "nonsense"},
        {"created_after": "yesterday"},
    ):
        response = client.get("/v1/generations", params=params, headers=auth(key))
        assert response.status_code == 422, params
        assert response.json()["detail"][0]["loc"][0] == "query"


def test_cancel_pending_is_immediate(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    gid = _create(client, key).json()["id"]
    response = client.post(f"/v1/generations/{gid}/cancel", headers=auth(key))
    assert response.status_code == 200
    assert response.json()["outcome"] == "cancelled"
    assert response.json()["generation"]["status"] == "cancelled"
    assert ISO_UTC.match(response.json()["generation"]["cancel_requested_at"])
    assert recorder.tasks_for(gid) == [tasknames.SUBMIT_MANY]
    again = client.post(f"/v1/generations/{gid}/cancel", headers=auth(key))
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]


def test_cancel_running_is_requested_and_published(
    client: TestClient,
    key: str,
    recorder: RecordingPublisher,
    pg_sessions: sessionmaker[Session],
) -> None:
    gid = _create(client, key).json()["id"]
    move(pg_sessions, gid, GenerationStatus.RUNNING, upstream_request_id="up-3")
    response = client.post(f"/v1/generations/{gid}/cancel", headers=auth(key))
    assert response.status_code == 202
    assert response.json()["outcome"] == "requested"
    assert response.json()["generation"]["status"] == "running"
    assert response.json()["generation"]["cancel_requested_at"]
    assert recorder.tasks_for(gid) == [tasknames.SUBMIT_MANY, tasknames.CANCEL]
    again = client.post(f"/v1/generations/{gid}/cancel", headers=auth(key))
    assert (again.status_code, again.json()["outcome"]) == (202, "already_requested")
    assert recorder.tasks_for(gid) == [tasknames.SUBMIT_MANY, tasknames.CANCEL]


def test_unknown_generation_is_404(client: TestClient, key: str) -> None:
    gid = "6b1f1f3e-8d4e-4a57-9a1e-1a2b3c4d5e6f"
    for method, path in (
        ("GET", f"/v1/generations/{gid}"),
        ("POST", f"/v1/generations/{gid}/cancel"),
    ):
        response = client.request(method, path, headers=auth(key))
        assert response.status_code == 404
        assert response.json() == {"detail": "Generation not found"}


# ---- idempotency -------------------------------------------------------------------------


def test_same_key_same_body_is_the_same_generation(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    headers = {"Idempotency-Key": "order-1"}
    first = _create(client, key, headers=headers)
    second = _create(client, key, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert recorder.published == [(tasknames.SUBMIT_MANY, [[first.json()["id"]]])]
    assert first.json()["idempotency_key"] == "order-1"


def test_equivalent_bodies_count_as_the_same(client: TestClient, key: str) -> None:
    headers = {"Idempotency-Key": "order-2"}
    first = _create(client, key, headers=headers, input={**PROMPT, "safety_tolerance": 2})
    second = _create(client, key, headers=headers, input={**PROMPT, "safety_tolerance": "2"})
    assert first.json()["id"] == second.json()["id"]


def test_same_key_different_body_is_409(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    headers = {"Idempotency-Key": "order-3"}
    first = _create(client, key, headers=headers)
    clash = _create(client, key, headers=headers, input={"prompt": "a different prompt"})
    assert clash.status_code == 409
    assert "Idempotency-Key" in clash.json()["detail"]
    assert len(recorder.published) == 1
    listed = client.get("/v1/generations", headers=auth(key)).json()["items"]
    assert [item["id"] for item in listed] == [first.json()["id"]]


def test_idempotency_keys_are_per_tenant(client: TestClient, key: str, other_key: str) -> None:
    headers = {"Idempotency-Key": "shared-name"}
    mine = _create(client, key, headers=headers).json()["id"]
    theirs = _create(client, other_key, headers=headers).json()["id"]
    assert mine != theirs


def test_fal_submit_honours_idempotency_keys(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    headers = {**auth(key), "Idempotency-Key": "fal-1"}
    first = client.post(f"/{MODEL}", json=PROMPT, headers=headers).json()
    second = client.post(f"/{MODEL}", json=PROMPT, headers=headers).json()
    assert first["request_id"] == second["request_id"]
    assert len(recorder.published) == 1
    clash = client.post(f"/{MODEL}", json={"prompt": "other"}, headers=headers)
    assert clash.status_code == 409
    assert clash.json()["detail"]


def test_idempotency_key_is_validated(client: TestClient, key: str) -> None:
    bad_keys: list[str | bytes] = ["x" * 256, b"caf\xe9-1", "tab\tkey"]
    for bad in bad_keys:
        response = _create(client, key, headers={"Idempotency-Key": bad})
        assert response.status_code == 422, bad
        assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert _create(client, key, headers={"Idempotency-Key": "k" * 255}).status_code == 201


def test_a_crafted_cursor_is_refused_not_parsed(client: TestClient, key: str) -> None:
    """The cursor of issue 19: base64 of 3,000 ``[`` made the old JSON cursor recurse (500)."""
    nested = base64.urlsafe_b64encode(b"[" * 3000).decode()
    for cursor in (nested, "1" * 18 + "_" + "0" * 32, "12_" + "g" * 32):
        response = client.get("/v1/generations", params={"cursor": cursor}, headers=auth(key))
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


def test_concurrent_duplicates_make_one_generation(
    api_app: Any, key: str, recorder: RecordingPublisher
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    recorder.published.clear()
    headers = {**auth(key), "Idempotency-Key": "race-1"}
    body = {"model": MODEL, "input": PROMPT}
    with TestClient(api_app) as racer, ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: racer.post("/v1/generations", json=body, headers=headers), range(8))
        )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(recorder.published) == 1
