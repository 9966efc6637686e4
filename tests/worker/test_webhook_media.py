"""A client webhook hands out genqueue's URLs for the stored files, as ``GET {response_url}``
does: a completed job whose copy is still pending waits for it (up to ``media_wait`` after
completion), then carries the upstream's URL for what was not copied."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.orm import Session, sessionmaker

from models.media_urls import MediaSigner, MediaUrls
from models.tables import GENERATIONS, MEDIA_FILES
from tests.worker.webhook_support import ended_jobs, webhook_ctx
from worker.context import Limits, WorkerContext
from worker.lifecycle.webhook_claim import claim
from worker.lifecycle.webhooks import payload_builder

BASE = "https://genqueue.example"
UPSTREAM = "https://v3.fal.media/files/tiger/0.png"


def copying_job(ctx: WorkerContext, *, completed_ago: float = 0.0) -> uuid.UUID:
    """A completed job with one image, its copy pending, its webhook due."""
    [gen_id] = ended_jobs(ctx, "https://hooks.example/in")
    with ctx.sessions.begin() as session:
        session.execute(
            update(GENERATIONS)
            .where(GENERATIONS.c.id == gen_id)
            .values(
                result={"images": [{"url": UPSTREAM, "width": 8}]},
                media_status="pending",
                completed_at=datetime.now(UTC) - timedelta(seconds=completed_ago),
            )
        )
    return gen_id


def store_copy(ctx: WorkerContext, gen_id: uuid.UUID) -> None:
    now = datetime.now(UTC)
    with ctx.sessions.begin() as session:
        session.execute(
            insert(MEDIA_FILES).values(
                generation_id=gen_id,
                position=0,
                pointer="/images/0",
                upstream_url=UPSTREAM,
                status="stored",
                attempts=1,
                sha256="0" * 64,
                size=10,
                content_type="image/png",
                created_at=now,
                stored_at=now,
            )
        )
        session.execute(
            update(GENERATIONS).where(GENERATIONS.c.id == gen_id).values(media_status="stored")
        )


def media_ctx(sessions: sessionmaker[Session]) -> WorkerContext:
    urls = MediaUrls(MediaSigner(b"tests-media-key"), BASE, None)
    return replace(webhook_ctx(sessions, Limits(media_wait=60.0)), media_urls=urls)


def test_the_webhook_waits_for_the_copy_then_carries_genqueues_url(
    sessions: sessionmaker[Session],
) -> None:
    ctx = media_ctx(sessions)
    gen_id = copying_job(ctx)
    assert [d.id for d in claim(ctx, payload_builder(ctx))] == []  # the copy is pending
    store_copy(ctx, gen_id)
    [due] = claim(ctx, payload_builder(ctx))
    assert due.id == gen_id
    [image] = due.payload["payload"]["images"]
    signature = MediaSigner(b"tests-media-key").signature(gen_id, 0)
    assert image == {"url": f"{BASE}/media/{gen_id}/0/{signature}.png", "width": 8}


def test_past_media_wait_the_webhook_goes_with_the_upstream_url(
    sessions: sessionmaker[Session],
) -> None:
    ctx = media_ctx(sessions)
    gen_id = copying_job(ctx, completed_ago=61.0)
    [due] = claim(ctx, payload_builder(ctx))
    assert due.id == gen_id
    assert due.payload["payload"]["images"] == [{"url": UPSTREAM, "width": 8}]


def test_a_worker_that_cannot_make_genqueue_urls_does_not_wait(
    sessions: sessionmaker[Session],
) -> None:
    ctx = replace(media_ctx(sessions), media_urls=None)
    gen_id = copying_job(ctx)  # pending, just completed: it would wait if it could do better
    [due] = claim(ctx, payload_builder(ctx))
    assert due.id == gen_id
    assert due.payload["payload"]["images"] == [{"url": UPSTREAM, "width": 8}]
