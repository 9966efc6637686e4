"""Output files copied by the real stack (Celery worker and beat, the simulator over HTTP): a
worker killed mid-copy loses nothing and stores nothing twice."""

import hashlib
import uuid

import httpx
import pytest
from sqlalchemy import select

from genqueue.net import wait_until
from models.media_store import MediaStore, open_store
from models.tables import MediaFile
from tests.support.jobs import Jobs
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
