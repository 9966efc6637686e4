"""Serving stored files: capability URLs (no Authorization header), the right headers, Range,
and results that carry genqueue's URLs (the upstream's kept on /v1)."""

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.media_store import open_store
from models.settings import Settings
from models.tables import GENERATIONS, MEDIA_FILES
from tests.api.support import MODEL, auth, complete, new_key

BYTES = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
UPSTREAM = "https://v3.fal.media/files/abc/0.png"


def stored_generation(
    client: TestClient, key: str, sessions: sessionmaker[Session], settings: Settings
) -> tuple[str, dict[str, Any]]:
    """A completed generation whose one image genqueue stored; its id and its /v1 record."""
    created = client.post(
        "/v1/generations", json={"model": MODEL, "input": {"prompt": "kept"}}, headers=auth(key)
    )
    gen_id = created.json()["id"]
    complete(sessions, gen_id, {"images": [{"url": UPSTREAM, "width": 8}], "seed": 1})
    open_store(settings.media_store).put(f"{gen_id}/0", [BYTES])
    with sessions.begin() as session:
        session.execute(
            insert(MEDIA_FILES).values(
                generation_id=uuid.UUID(gen_id),
                position=0,
                pointer="/images/0",
                upstream_url=UPSTREAM,
                status="stored",
                attempts=1,
                sha256=hashlib.sha256(BYTES).hexdigest(),
                size=len(BYTES),
                content_type="image/png",
                created_at=datetime.now(UTC),
                stored_at=datetime.now(UTC),
            )
        )
        session.execute(
            update(GENERATIONS)
            .where(GENERATIONS.c.id == uuid.UUID(gen_id))
            .values(media_status="stored")
        )
    record = client.get(f"/v1/generations/{gen_id}", headers=auth(key)).json()
    return gen_id, record


@pytest.fixture
def stored(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session], api_settings: Settings
) -> tuple[str, dict[str, Any]]:
    return stored_generation(client, key, pg_sessions, api_settings)


def test_v1_and_the_fal_result_carry_genqueues_url_and_v1_the_upstreams(
    client: TestClient, key: str, stored: tuple[str, dict[str, Any]]
) -> None:
    gen_id, record = stored
    assert record["media_status"] == "stored"
    image = record["result"]["images"][0]
    assert image["url"].startswith(f"http://testserver/media/{gen_id}/0/")
    assert image["url"].endswith(".png")
    assert image["upstream_url"] == UPSTREAM
    assert image["width"] == 8
    fal = client.get(f"/fal-ai/flux-pro/requests/{gen_id}", headers=auth(key)).json()
    assert fal["images"][0] == {"url": image["url"], "width": 8}


def test_the_v1_list_carries_genqueues_url_and_the_upstreams_beside_it(
    client: TestClient, key: str, stored: tuple[str, dict[str, Any]]
) -> None:
    gen_id, record = stored
    page = client.get("/v1/generations", headers=auth(key)).json()
    [listed] = [g for g in page["items"] if g["id"] == gen_id]
    assert listed["result"] == record["result"]
    assert listed["result"]["images"][0]["upstream_url"] == UPSTREAM


def test_the_url_serves_the_bytes_without_authorization(
    client: TestClient, stored: tuple[str, dict[str, Any]]
) -> None:
    _, record = stored
    response = client.get(record["result"]["images"][0]["url"])
    assert response.status_code == 200
    assert response.content == BYTES
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(BYTES))
    assert response.headers["etag"] == f'"{hashlib.sha256(BYTES).hexdigest()}"'
    assert response.headers["cache-control"] == "private, max-age=86400"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    head = client.head(record["result"]["images"][0]["url"])
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(BYTES))
    again = client.get(
        record["result"]["images"][0]["url"], headers={"If-None-Match": response.headers["etag"]}
    )
    assert (again.status_code, again.content) == (304, b"")


@pytest.mark.parametrize(
    ("header", "status", "start", "end"),
    [
        ("bytes=0-9", 206, 0, 10),
        ("bytes=100-", 206, 100, len(BYTES)),
        ("bytes=-16", 206, len(BYTES) - 16, len(BYTES)),
        ("bytes=10-999999", 206, 10, len(BYTES)),
        ("bytes=0-1,5-6", 200, 0, len(BYTES)),  # several ranges: the whole file
        ("pages=1-2", 200, 0, len(BYTES)),
    ],
)
def test_ranges(
    client: TestClient,
    stored: tuple[str, dict[str, Any]],
    header: str,
    status: int,
    start: int,
    end: int,
) -> None:
    _, record = stored
    response = client.get(record["result"]["images"][0]["url"], headers={"Range": header})
    assert response.status_code == status
    assert response.content == BYTES[start:end]
    assert response.headers["content-length"] == str(end - start)
    if status == 206:
        assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(BYTES)}"


def test_a_range_past_the_end_is_416(
    client: TestClient, stored: tuple[str, dict[str, Any]]
) -> None:
    _, record = stored
    response = client.get(
        record["result"]["images"][0]["url"], headers={"Range": f"bytes={len(BYTES)}-"}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(BYTES)}"


def test_a_forged_or_moved_url_is_404(
    client: TestClient, stored: tuple[str, dict[str, Any]]
) -> None:
    gen_id, record = stored
    url: str = record["result"]["images"][0]["url"]
    signature = url.rsplit("/", 1)[1].split(".")[0]
    forged = url.replace(signature, ("A" if signature[0] != "A" else "B") + signature[1:])
    other = url.replace(gen_id, str(uuid.uuid4()))
    next_file = url.replace(f"/{gen_id}/0/", f"/{gen_id}/1/")
    for bad in (forged, other, next_file):
        response = client.get(bad)
        assert response.status_code == 404, bad
        assert response.json()["detail"] == "Not found"


def test_another_tenant_never_sees_the_generation(
    client: TestClient, pg_sessions: sessionmaker[Session], stored: tuple[str, dict[str, Any]]
) -> None:
    gen_id, _ = stored
    stranger = new_key(pg_sessions)
    assert client.get(f"/v1/generations/{gen_id}", headers=auth(stranger)).status_code == 404


def test_delete_leaves_a_tombstone_and_the_urls_404(
    client: TestClient,
    key: str,
    pg_sessions: sessionmaker[Session],
    stored: tuple[str, dict[str, Any]],
) -> None:
    gen_id, record = stored
    url = record["result"]["images"][0]["url"]
    stranger = new_key(pg_sessions)
    assert client.delete(f"/v1/generations/{gen_id}", headers=auth(stranger)).status_code == 404
    assert client.get(url).status_code == 200  # the stranger changed nothing

    response = client.delete(f"/v1/generations/{gen_id}", headers=auth(key))
    assert (response.status_code, response.content) == (204, b"")
    assert client.get(url).status_code == 404
    tomb = client.get(f"/v1/generations/{gen_id}", headers=auth(key)).json()
    assert (tomb["status"], tomb["media_status"], tomb["result"], tomb["input"]) == (
        "completed",
        "deleted",
        None,
        {},
    )
    assert (tomb["id"], tomb["model"]) == (gen_id, MODEL)
    assert tomb["completed_at"] is not None
    assert tomb["events"][-1]["kind"] == "media_deleted"
    with pg_sessions() as session:
        states = session.scalars(
            select(MEDIA_FILES.c.status).where(MEDIA_FILES.c.generation_id == uuid.UUID(gen_id))
        ).all()
    assert states == ["deleting"]  # the media tick removes the object (tests/worker)
    assert client.delete(f"/v1/generations/{gen_id}", headers=auth(key)).status_code == 204


def test_the_fal_result_of_a_deleted_generation_is_gone_not_empty(
    client: TestClient, key: str, stored: tuple[str, dict[str, Any]]
) -> None:
    """A fal client fetching a deleted result gets an error it raises on, not ``{}`` with 200
    (which it would hand on as an output without images)."""
    gen_id, _ = stored
    result_url = f"/fal-ai/flux-pro/requests/{gen_id}"
    before = client.get(result_url, headers=auth(key)).json()
    assert before["images"][0]["url"].startswith("http://testserver/media/")
    assert client.delete(f"/v1/generations/{gen_id}", headers=auth(key)).status_code == 204

    gone = client.get(result_url, headers=auth(key))
    assert gone.status_code == 410
    assert gone.json() == {
        "detail": "The result of this request was deleted; its output and files are not kept",
        "error_type": "result_deleted",
    }
    assert gone.headers["x-fal-error-type"] == "result_deleted"
    status = client.get(f"{result_url}/status", headers=auth(key)).json()
    assert status["status"] == "COMPLETED"  # it did complete; only its output is gone


def test_a_generation_still_running_cannot_be_deleted(client: TestClient, key: str) -> None:
    created = client.post(
        "/v1/generations", json={"model": MODEL, "input": {"prompt": "busy"}}, headers=auth(key)
    ).json()
    response = client.delete(f"/v1/generations/{created['id']}", headers=auth(key))
    assert response.status_code == 409
    assert response.json()["detail"] == "Generation has not ended (pending): cancel it first"
    again = client.get(f"/v1/generations/{created['id']}", headers=auth(key)).json()
    assert again["input"]["prompt"] == "busy"


def test_a_sync_run_marks_its_copy_awaited_and_a_queued_request_does_not(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    """``/run`` waits for its answer, copied files included, so the media lease takes its files
    before a backlog (``tests/worker/test_media_awaited.py``); a queued request's caller comes
    back for its result whenever it likes."""
    ran = client.post(f"/run/{MODEL}", json={"prompt": "awaited"}, headers=auth(key))
    assert ran.status_code == 504, ran.text  # no worker here: the job goes on
    queued = client.post(f"/{MODEL}", json={"prompt": "not awaited"}, headers=auth(key))
    native = client.post(
        "/v1/generations", json={"model": MODEL, "input": {"prompt": "no"}}, headers=auth(key)
    )
    ids = [ran.headers["x-fal-request-id"], queued.json()["request_id"], native.json()["id"]]
    c = GENERATIONS.c
    with pg_sessions() as session:
        rows = session.execute(
            select(c.id, c.copy_awaited).where(c.id.in_([uuid.UUID(i) for i in ids]))
        ).all()
    assert {str(gen_id): awaited for gen_id, awaited in rows} == {
        ids[0]: True,
        ids[1]: False,
        ids[2]: False,
    }


def test_a_native_create_marks_its_copy_awaited_when_asked(
    client: TestClient, key: str, pg_sessions: sessionmaker[Session]
) -> None:
    """``await_media`` on ``/v1`` (what ``genqueue submit --wait`` sends) marks the copy awaited
    like a sync ``/run``'s; anything but a JSON boolean is a 422 naming it, and nothing is
    stored."""
    asked = client.post(
        "/v1/generations",
        json={"model": MODEL, "input": {"prompt": "asked"}, "await_media": True},
        headers=auth(key),
    )
    assert asked.status_code == 201, asked.text
    c = GENERATIONS.c
    with pg_sessions() as session:
        awaited = session.scalar(
            select(c.copy_awaited).where(c.id == uuid.UUID(asked.json()["id"]))
        )
        before = session.scalar(select(func.count()).select_from(GENERATIONS))
    assert awaited is True
    bad = client.post(
        "/v1/generations",
        json={"model": MODEL, "input": {"prompt": "bad"}, "await_media": "yes"},
        headers=auth(key),
    )
    assert bad.status_code == 422, bad.text
    assert [e["loc"] for e in bad.json()["detail"]] == [["body", "await_media"]]
    with pg_sessions() as session:
        assert session.scalar(select(func.count()).select_from(GENERATIONS)) == before
