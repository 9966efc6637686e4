"""What the console reads besides the existing routes: the ``/v1`` status stream, the list's
prompt search, genqueue's media URLs and local positions in the list, and ``/v1/overview``;
all of them the caller's tenant's only. The pages themselves are tested in a real browser
(tests/integration/test_console.py)."""

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.routes.overview import percentile
from models.settings import Settings
from models.status import GenerationStatus
from models.tables import Generation
from models.tenants import set_tenant
from models.vocabulary import EventKind
from tests.api.support import MODEL, RecordingPublisher, auth, complete, live_server, move, new_key


@pytest.fixture(scope="module")
def own_client(api_settings: Settings) -> Iterator[TestClient]:
    """An app of this module's own for the routes only the console calls, so their metric
    series stay out of the session app's /metrics (tests/api/test_metrics.py bounds its size)."""
    with TestClient(create_app(api_settings, publisher=RecordingPublisher())) as client:
        yield client


def _create(client: TestClient, key: str, prompt: str) -> str:
    answer = client.post(
        "/v1/generations", json={"model": MODEL, "input": {"prompt": prompt}}, headers=auth(key)
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _data(lines: Iterator[str]) -> dict[str, Any]:
    for line in lines:
        if line.startswith("data: "):
            return dict(json.loads(line[len("data: ") :]))
    raise AssertionError("the stream ended without another event")


def test_the_v1_stream_follows_a_generation_until_it_has_ended_and_its_files_are_copied(
    api_settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    key = new_key(pg_sessions)
    app = create_app(api_settings, publisher=RecordingPublisher())
    with live_server(app) as base, httpx.Client(base_url=base, timeout=20) as http:
        gid = str(
            http.post(
                "/v1/generations",
                json={"model": MODEL, "input": {"prompt": "streamed"}},
                headers=auth(key),
            ).json()["id"]
        )
        with http.stream("GET", f"/v1/generations/{gid}/stream", headers=auth(key)) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.iter_lines()
            first = _data(lines)
            assert first["id"] == gid
            assert first["status"] == "pending"
            assert first["local_queue_position"] == 0
            move(pg_sessions, gid, GenerationStatus.QUEUED, queue_position=3)
            queued = _data(lines)
            assert (queued["status"], queued["queue_position"]) == ("queued", 3)
            assert queued["local_queue_position"] is None
            move(  # the worker records the result and media_status in one statement
                pg_sessions,
                gid,
                GenerationStatus.COMPLETED,
                event=EventKind.COMPLETED,
                result={"images": [{"url": "https://cdn.example/a.png"}]},
                completed_at=datetime.now(UTC),
                media_status="pending",
            )
            done = _data(lines)
            assert (done["status"], done["media_status"]) == ("completed", "pending")
            with pg_sessions.begin() as session:
                session.execute(
                    update(Generation)
                    .where(Generation.id == uuid.UUID(gid))
                    .values(media_status="stored")
                )
            assert _data(lines)["media_status"] == "stored"
            assert [line for line in lines if line] == []  # and then it ends
        # Another tenant's generation does not exist for this key.
        other = new_key(pg_sessions)
        assert http.get(f"/v1/generations/{gid}/stream", headers=auth(other)).status_code == 404
    app.state.genqueue.close()


def test_v1_and_fal_streams_share_the_per_key_limit(
    api_settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    key = new_key(pg_sessions)
    settings = api_settings.model_copy(update={"stream_max_per_key": 2})
    app = create_app(settings, publisher=RecordingPublisher())
    with (
        live_server(app) as base,
        httpx.Client(base_url=base, timeout=20) as http,
        ExitStack() as streams,
    ):
        rid = str(
            http.post(f"/{MODEL}", json={"prompt": "x"}, headers=auth(key)).json()["request_id"]
        )
        fal = f"/fal-ai/flux-pro/requests/{rid}/status/stream"
        native = f"/v1/generations/{rid}/stream"
        for url in (fal, native):
            held = streams.enter_context(http.stream("GET", url, headers=auth(key)))
            assert held.status_code == 200
        refused = http.get(native, headers=auth(key))
        assert refused.status_code == 429
        assert "2 open status streams" in refused.json()["detail"]
    app.state.genqueue.close()


def test_the_list_searches_prompts_of_the_callers_tenant_only(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    key, other = new_key(pg_sessions), new_key(pg_sessions)
    word = uuid.uuid4().hex[:8]
    mine = _create(client, key, f"A red FOX {word} at 50% off_now")
    _create(client, key, "a blue whale")
    theirs = _create(client, other, f"a red fox {word}")

    def found(prompt: str, who: str = key) -> list[str]:
        page = client.get("/v1/generations", params={"prompt": prompt}, headers=auth(who))
        assert page.status_code == 200, page.text
        return [item["id"] for item in page.json()["items"]]

    assert found(f"fox {word}") == [mine]  # case-insensitive, the other tenant's not
    assert found(f"fox {word}", other) == [theirs]
    assert found("50% off_") == [mine]  # % and _ are literal
    assert found("50_ off") == []
    refused = client.get("/v1/generations", params={"prompt": "x" * 201}, headers=auth(key))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["query", "prompt"]


def test_list_items_carry_the_local_queue_position_and_genqueues_media_urls(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    key = new_key(pg_sessions)
    first, second = _create(client, key, "first"), _create(client, key, "second")
    items = {i["id"]: i for i in client.get("/v1/generations", headers=auth(key)).json()["items"]}
    assert items[first]["local_queue_position"] == 0
    assert items[second]["local_queue_position"] == 1
    move(pg_sessions, first, GenerationStatus.QUEUED, queue_position=7, upstream_request_id="u")
    items = {i["id"]: i for i in client.get("/v1/generations", headers=auth(key)).json()["items"]}
    assert items[first]["local_queue_position"] is None
    assert items[first]["queue_position"] == 7
    assert items[second]["local_queue_position"] == 0


def test_overview_counts_the_callers_tenant_only(
    own_client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    client = own_client
    key, other = new_key(pg_sessions), new_key(pg_sessions)
    ids = [_create(client, key, f"job {n}") for n in range(4)]
    _create(client, other, "not counted")
    move(pg_sessions, ids[0], GenerationStatus.RUNNING, upstream_request_id="u0")
    complete(pg_sessions, ids[1], {"images": []})
    complete(pg_sessions, ids[2], {"images": []})
    now = datetime.now(UTC)
    with pg_sessions.begin() as session:  # 10 s and 30 s from creation to result
        for gid, took in ((ids[1], 10), (ids[2], 30)):
            session.execute(
                update(Generation)
                .where(Generation.id == uuid.UUID(gid))
                .values(created_at=now - timedelta(seconds=took), completed_at=now)
            )
    answer = client.get("/v1/overview", headers=auth(key))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["counts"] == {
        "pending": 1,
        "submitting": 0,
        "queued": 0,
        "running": 1,
        "completed": 2,
        "failed": 0,
        "cancelled": 0,
    }
    assert body["live"] == 1
    assert body["live_cap"] is None
    assert body["last_hour"]["completed"] == 2
    assert body["last_hour"]["p50_seconds"] == pytest.approx(10, abs=0.01)
    assert body["last_hour"]["p99_seconds"] == pytest.approx(30, abs=0.01)
    assert body["flower_url"] == "http://127.0.0.1:5555"
    assert client.get("/v1/overview").status_code == 401


def test_overview_shows_the_tenants_cap(
    own_client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    client = own_client
    name = f"capped-{uuid.uuid4().hex[:8]}"
    key = new_key(pg_sessions, tenant=name)
    with pg_sessions.begin() as session:
        set_tenant(session, name, {"max_in_flight": 3})
    assert client.get("/v1/overview", headers=auth(key)).json()["live_cap"] == 3


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [
        ([], 0.5, None),
        ([4.0], 0.99, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(n) for n in range(1, 101)], 0.99, 99.0),
        ([float(n) for n in range(1, 101)], 0.5, 50.0),
        ([1.0, 2.0], 0.99, 2.0),
    ],
)
def test_percentile_is_the_nearest_rank(
    values: list[float], share: float, expected: float | None
) -> None:
    assert percentile(values, share) == expected


def test_console_pages_are_shells_with_a_strict_content_security_policy(
    own_client: TestClient,
) -> None:
    client = own_client
    for path in ("/console", "/console/new", "/console/overview", "/console/sign-in"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "connect-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert "http://" not in page.text.replace("http://www.w3.org", "")  # no CDN
    detail = client.get('/console/generations/"><img src=x onerror=alert(1)>')
    assert detail.status_code == 200
    assert "<img src=x" not in detail.text  # the id is escaped, never markup
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in detail.text
    script = client.get("/console/static/common.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert client.get("/console/static/nope.js").status_code == 404


def test_cursor_pages_split_rows_of_one_instant_exactly_once(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    """The cursor condition is a range of the index plus a tie-break on the id: rows created in
    the same microsecond are neither skipped nor repeated across pages."""
    key = new_key(pg_sessions)
    ids = [_create(client, key, f"tie {n}") for n in range(5)]
    instant = datetime.now(UTC) - timedelta(minutes=1)
    with pg_sessions.begin() as session:
        session.execute(
            update(Generation)
            .where(Generation.id.in_([uuid.UUID(i) for i in ids]))
            .values(created_at=instant)
        )
    newer = _create(client, key, "newer")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/generations", params=params, headers=auth(key)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [newer, *sorted(ids, key=lambda i: uuid.UUID(i), reverse=True)]
