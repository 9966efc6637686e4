"""Output files copied by the real stack (Celery worker and beat, the simulator over HTTP): a
worker killed mid-copy loses nothing and stores nothing twice; once the upstream's files are
gone, genqueue's API still serves the same bytes."""

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from genqueue.net import wait_until
from models import tasknames
from models.keys import create_key
from models.media_store import MediaStore, open_store
from models.settings import Settings
from models.tables import MediaFile
from tests.api.support import RecordingPublisher, auth
from tests.support.generations import create_generation
from tests.support.jobs import MODEL, Jobs
from tests.support.stack import SimAdmin, Stack

pytestmark = pytest.mark.integration


def stack_store(stack: Stack) -> MediaStore:
    return open_store(f"file://{stack.dir}/media")


def media_files(jobs: Jobs, gen_id: uuid.UUID) -> list[MediaFile]:
    with jobs.sessions() as session:
        query = select(MediaFile).where(MediaFile.generation_id == gen_id)
        return list(session.scalars(query.order_by(MediaFile.position)))


def wait_media(jobs: Jobs, gen_id: uuid.UUID, timeout: float = 60.0) -> str:
    def settled() -> str | None:
        status = jobs.get(gen_id).media_status
        return status if status in ("stored", "failed") else None

    status: str = wait_until(settled, timeout, interval=0.2, what="the media copy to settle")
    return status


def test_a_worker_killed_mid_copy_loses_nothing_and_stores_nothing_twice(
    jobs: Jobs, stack: Stack, sim: SimAdmin
) -> None:
    marker = f"killed mid-copy {uuid.uuid4().hex[:6]}"
    sim.add_fault(op="file", kind="hang", delay=60, times=1, match_prompt=marker)
    [gen] = jobs.wait([jobs.create(marker, num_images=2)], timeout=60)
    assert gen.status == "completed"

    def copy_in_flight() -> bool:
        rules = sim.http.get("/_sim/faults").json()
        return not any(r.get("match_prompt") == marker for r in rules)

    wait_until(copy_in_flight, 30, interval=0.1, what="a copy to hang on the CDN")
    stack.webhooks.kill()  # SIGKILL: the copy's thread dies with its lease held
    stack.webhooks.start()
    assert wait_media(jobs, gen.id) == "stored"

    gen = jobs.get(gen.id)
    assert gen.result is not None
    store = stack_store(stack)
    assert sorted(store.keys(str(gen.id))) == [f"{gen.id}/0", f"{gen.id}/1"]
    rows = media_files(jobs, gen.id)
    assert [r.status for r in rows] == ["stored", "stored"]
    for row, image in zip(rows, gen.result["images"], strict=True):
        upstream = httpx.get(image["url"]).content
        assert row.sha256 == hashlib.sha256(upstream).hexdigest()
        assert hashlib.sha256(store.read_all(f"{gen.id}/{row.position}")).hexdigest() == row.sha256
    stored_events = [e.detail for e in gen.events if e.kind == "media_stored"]
    assert sorted(d["position"] for d in stored_events if d) == [0, 1]  # each once


@pytest.fixture
def api(stack: Stack, pg_url: str) -> Iterator[TestClient]:
    """The API in this process, on the stack's database and data dir (so its media store and
    signing key are the ones the stack's worker uses)."""
    settings = Settings(database_url=pg_url, data_dir=Path(stack.dir), broker_url=stack.broker_url)
    with TestClient(create_app(settings, publisher=RecordingPublisher())) as client:
        yield client


def test_once_the_upstream_file_is_gone_genqueue_serves_the_same_bytes(
    api: TestClient,
    pg_sessions: sessionmaker[Session],
    publisher: Celery,
    jobs: Jobs,
    sim: SimAdmin,
) -> None:
    marker = f"outlives the cdn {uuid.uuid4().hex[:6]}"
    with pg_sessions.begin() as session:
        key, plain = create_key(session, name=f"media-{marker[-6:]}")
        gen_id = create_generation(
            session,
            tenant_id=key.tenant_id,
            model=MODEL,
            input={"prompt": marker, "output_format": "png"},
            now=datetime.now(UTC),
            deadline_seconds=120,
            submit_grace_seconds=2.0,
        ).id
    publisher.send_task(tasknames.SUBMIT_MANY, args=[[str(gen_id)]], queue=tasknames.QUEUE)
    [gen] = jobs.wait([gen_id], timeout=60)
    assert gen.status == "completed"
    assert wait_media(jobs, gen_id) == "stored"
    assert gen.result is not None
    upstream_url = gen.result["images"][0]["url"]
    upstream_sha = hashlib.sha256(httpx.get(upstream_url).content).hexdigest()

    sim.add_fault(op="file", kind="http", status_code=404, match_prompt=marker)  # the CDN forgets
    assert httpx.get(upstream_url).status_code == 404

    record = api.get(f"/v1/generations/{gen_id}", headers=auth(plain)).json()
    image = record["result"]["images"][0]
    assert image["upstream_url"] == upstream_url
    assert image["url"] != upstream_url
    served = api.get(image["url"])  # no Authorization header
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert hashlib.sha256(served.content).hexdigest() == upstream_sha
