"""Copies of output files, driven by the media tick's body against the simulator over real
HTTP, a real database and a real store directory: stored with the bytes' SHA-256, size and
sniffed type; a CDN 404 or an oversized file fails the copy for good (the job stays completed);
transient failures are retried until they succeed or the media deadline passes."""

import hashlib
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.destinations import AddressPolicy
from models.media import claim_due, expand_pending, media_status_for, object_key
from models.media_deletion import tombstone
from models.media_store import MediaStore, open_store
from models.tables import Generation, MediaFile
from models.types import utcnow
from simulator import SimulatorServer
from tests.support.s3 import s3_server
from tests.worker.lifecycle_support import drive, kinds, lifecycle_env, load, new_job
from worker.context import Limits, WorkerContext
from worker.lifecycle import retention
from worker.lifecycle.media import copy_due_media, media_http, media_tick, remove_deleted


class Clock:
    """The real time plus an offset the test moves (retries fall due without waiting)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset


@pytest.fixture
def env(
    sessions: sessionmaker[Session], tmp_path: Path
) -> Iterator[tuple[WorkerContext, SimulatorServer, MediaStore, Clock]]:
    limits = Limits(lease_seconds=5.0, submit_grace=0.5, max_submit_attempts=4, max_poll_errors=6)
    with lifecycle_env(sessions, limits=limits) as (ctx, srv, recorder):
        store = open_store(f"file://{tmp_path}/media")
        clock = Clock()
        http = media_http(10.0, 8, AddressPolicy(allow_private=True))  # the simulator: 127.0.0.1
        ctx = replace(ctx, clock=clock, media_store=store, media_http=http)
        ctx.publish = recorder
        try:
            yield ctx, srv, store, clock
        finally:
            http.close()


def completed_job(ctx: WorkerContext, prompt: str, **input: Any) -> uuid.UUID:
    gen_id = new_job(ctx, prompt=prompt, **input)
    gen = drive(ctx, ctx.publish, gen_id)  # type: ignore[arg-type]
    assert gen.status == "completed"
    assert gen.media_status == "pending"
    return gen_id


def tick_until(ctx: WorkerContext, clock: Clock, done: Callable[[], bool], ticks: int = 30) -> None:
    """Run the media tick (moving the clock past any retry delay) until ``done``."""
    summaries = []
    for _ in range(ticks):
        assert ctx.media_store is not None
        assert ctx.media_http is not None
        summaries.append(copy_due_media(ctx, ctx.media_store, ctx.media_http))
        if done():
            return
        clock.offset += timedelta(seconds=400)
    with ctx.sessions() as session:
        rows = [(f.generation_id, f.status, f.error) for f in session.scalars(select(MediaFile))]
    raise AssertionError(f"the media tick never got there: {summaries} {rows}")


def files(ctx: WorkerContext, gen_id: uuid.UUID) -> list[MediaFile]:
    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(MediaFile)
                .where(MediaFile.generation_id == gen_id)
                .order_by(MediaFile.position)
            )
        )


def media_settled(ctx: WorkerContext, gen_id: uuid.UUID) -> Callable[[], bool]:
    return lambda: load(ctx, gen_id).media_status in ("stored", "failed")


def test_every_file_is_copied_with_its_hash_size_and_type(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
) -> None:
    ctx, _, store, clock = env
    gen_id = completed_job(ctx, "two lighthouses", num_images=2, output_format="png")
    tick_until(ctx, clock, media_settled(ctx, gen_id))
    gen = load(ctx, gen_id)
    assert gen.media_status == "stored"
    assert gen.result is not None
    rows = files(ctx, gen_id)
    assert [(f.position, f.pointer, f.status) for f in rows] == [
        (0, "/images/0", "stored"),
        (1, "/images/1", "stored"),
    ]
    for row, image in zip(rows, gen.result["images"], strict=True):
        upstream = httpx.get(image["url"]).content
        copy = store.read_all(object_key(gen_id, row.position))
        assert copy == upstream
        assert row.sha256 == hashlib.sha256(upstream).hexdigest()
        assert row.size == len(upstream)
        assert row.content_type == "image/png"
        assert row.upstream_url == image["url"]
    assert kinds(gen).count("media_stored") == 2
    assert sorted(store.keys(str(gen_id))) == [f"{gen_id}/0", f"{gen_id}/1"]


def test_a_cdn_404_fails_the_copy_for_good_and_the_job_stays_completed(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
) -> None:
    ctx, srv, store, clock = env
    srv.sim.add_fault({"op": "file", "kind": "http", "status_code": 404, "match_prompt": "gone"})
    gen_id = completed_job(ctx, "gone before copied")
    tick_until(ctx, clock, media_settled(ctx, gen_id))
    gen = load(ctx, gen_id)
    assert (gen.status, gen.media_status) == ("completed", "failed")
    [row] = files(ctx, gen_id)
    assert (row.status, row.error, row.attempts) == ("failed", "HTTP 404", 1)
    assert gen.result is not None
    assert gen.result["images"][0]["url"] == row.upstream_url
    assert kinds(gen).count("media_failed") == 1
    assert store.keys(str(gen_id)) == []


def test_transient_failures_are_retried_until_the_copy_succeeds(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
) -> None:
    ctx, srv, _, clock = env
    srv.sim.add_fault(
        {"op": "file", "kind": "http", "status_code": 503, "times": 2, "match_prompt": "flaky"}
    )
    srv.sim.add_fault({"op": "file", "kind": "reset", "times": 1, "match_prompt": "flaky"})
    gen_id = completed_job(ctx, "flaky cdn")
    tick_until(ctx, clock, media_settled(ctx, gen_id))
    gen = load(ctx, gen_id)
    assert gen.media_status == "stored"
    [row] = files(ctx, gen_id)
    assert (row.status, row.attempts) == ("stored", 4)
    retries = [e.detail for e in gen.events if e.kind == "media_retry"]
    reasons = [d["reason"] for d in retries if d]
    assert reasons[:2] == ["HTTP 503", "HTTP 503"]
    assert len(reasons) == 3
    assert reasons[2].startswith("fetching the file: ")  # the reset (a read or protocol error)


def test_transient_failures_past_the_media_deadline_fail_the_copy(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
) -> None:
    ctx, srv, _, clock = env
    ctx = replace(ctx, limits=replace(ctx.limits, media_deadline=600.0))
    srv.sim.add_fault({"op": "file", "kind": "http", "status_code": 502, "match_prompt": "down"})
    gen_id = completed_job(ctx, "cdn down for good")
    tick_until(ctx, clock, media_settled(ctx, gen_id))
    [row] = files(ctx, gen_id)
    assert row.status == "failed"
    assert row.error is not None
    assert row.error.startswith("media deadline passed after 3 attempts; last: HTTP 502")


def test_a_file_over_the_size_limit_is_refused_while_read(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
) -> None:
    ctx, _, store, clock = env
    ctx = replace(ctx, limits=replace(ctx.limits, media_max_bytes=1000))
    gen_id = completed_job(ctx, "too big to keep")
    tick_until(ctx, clock, media_settled(ctx, gen_id))
    [row] = files(ctx, gen_id)
    assert row.status == "failed"
    assert row.error is not None
    assert row.error.startswith("over the size limit of 1000 bytes")
    assert store.keys(str(gen_id)) == []


def test_a_result_without_http_file_urls_copies_nothing() -> None:
    assert media_status_for({"images": [], "seed": 1}) is None
    assert media_status_for({"images": [{"url": "data:image/png;base64,AAAA"}]}) is None
    assert media_status_for({"video": {"url": "https://cdn/x.mp4"}}) == "pending"


def test_deleted_files_leave_the_store_on_the_next_tick(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
) -> None:
    ctx, _, store, clock = env
    gen_id = completed_job(ctx, "to be deleted", num_images=2)
    tick_until(ctx, clock, media_settled(ctx, gen_id))
    assert len(store.keys(str(gen_id))) == 2
    with ctx.sessions.begin() as session:
        assert tombstone(session, [gen_id], clock(), reason="request") == 1
    assert [f.status for f in files(ctx, gen_id)] == ["deleting", "deleting"]
    assert ctx.media_store is not None
    assert remove_deleted(ctx, ctx.media_store, clock()) == 2
    assert store.keys(str(gen_id)) == []
    assert files(ctx, gen_id) == []
    gen = load(ctx, gen_id)
    assert (gen.status, gen.media_status, gen.result, gen.input) == (
        "completed",
        "deleted",
        None,
        {},
    )


def test_a_copy_in_flight_when_deleted_is_removed_once_its_lease_ends(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
) -> None:
    ctx, _, store, clock = env
    gen_id = completed_job(ctx, "deleted mid-copy")
    now = clock()
    with ctx.sessions.begin() as session:
        expand_pending(session, now, limit=10, wait=30.0)
    with ctx.sessions.begin() as session:
        [due] = claim_due(session, now, limit=10, lease_until=now + timedelta(seconds=60))
    with ctx.sessions.begin() as session:
        tombstone(session, [gen_id], now, reason="request")
    assert ctx.media_store is not None
    assert remove_deleted(ctx, ctx.media_store, now) == 0  # the copy still holds its lease
    store.put(due.key, [b"the copy lands late"])
    assert remove_deleted(ctx, ctx.media_store, now + timedelta(seconds=61)) == 1
    assert store.keys(str(gen_id)) == []


def test_media_retention_clears_old_outputs_and_job_retention_waits_for_the_files(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
) -> None:
    ctx, _, store, clock = env
    old = completed_job(ctx, "old outputs")
    young = completed_job(ctx, "young outputs")
    tick_until(ctx, clock, media_settled(ctx, old))
    tick_until(ctx, clock, media_settled(ctx, young))
    ended = load(ctx, old).completed_at
    assert ended is not None
    with ctx.sessions.begin() as session:  # old ended three days before young
        session.execute(
            update(Generation)
            .where(Generation.id == old)
            .values(completed_at=ended - timedelta(days=3))
        )
    clock.offset = timedelta(days=1)

    aged = replace(ctx, limits=replace(ctx.limits, media_retention_days=2.0))
    retention.sweep_expired(aged)
    assert (load(ctx, old).media_status, load(ctx, young).media_status) == ("deleted", "stored")
    assert ctx.media_store is not None
    remove_deleted(ctx, ctx.media_store, clock())
    assert store.keys(str(old)) == []
    assert len(store.keys(str(young))) == 1

    clock.offset += timedelta(days=3)
    gone = replace(ctx, limits=replace(ctx.limits, retention_days=1.0))
    retention.sweep_expired(gone)  # tombstones young; its row waits for its file
    with ctx.sessions() as session:
        left = set(session.scalars(select(Generation.id).where(Generation.id.in_([old, young]))))
    assert left == {young}
    remove_deleted(ctx, ctx.media_store, clock())
    retention.sweep_expired(gone)
    with ctx.sessions() as session:
        assert session.scalar(select(Generation.id).where(Generation.id == young)) is None
    assert store.keys(str(young)) == []


def test_copies_land_in_an_s3_compatible_bucket(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx, _, _, clock = env
    with s3_server() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        bucket = open_store(f"s3://{server.bucket}/media", endpoint=server.endpoint)
        ctx = replace(ctx, media_store=bucket)
        gen_id = completed_job(ctx, "into the bucket", num_images=2)
        tick_until(ctx, clock, media_settled(ctx, gen_id))
        rows = files(ctx, gen_id)
        assert [r.status for r in rows] == ["stored", "stored"]
        for row in rows:
            data = bucket.read_all(object_key(gen_id, row.position))
            assert hashlib.sha256(data).hexdigest() == row.sha256
        with ctx.sessions.begin() as session:
            tombstone(session, [gen_id], clock(), reason="request")
        assert remove_deleted(ctx, bucket, clock()) == 2
        assert bucket.keys(str(gen_id)) == []


class GatedStore(MediaStore):
    """The store, whose writes wait for ``gate`` and note the writing thread's CPU niceness."""

    def __init__(self, inner: MediaStore) -> None:
        super().__init__(inner._store, inner.url)
        self.writing = threading.Event()
        self.gate = threading.Event()
        self.niceness: list[int] = []

    def put(self, key: str, chunks: Iterable[bytes], *, content_type: str | None = None) -> None:
        self.niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        self.writing.set()
        assert self.gate.wait(30), "the test never opened the gate"
        super().put(key, chunks, content_type=content_type)


def test_one_media_tick_runs_at_a_time_in_a_process(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock],
) -> None:
    """Beat sends a tick a second and a worker may have several threads: a second tick while
    one copies returns at once, so a process copies at most ``media_concurrency`` files."""
    ctx, _, store, _ = env
    gen_id = completed_job(ctx, "one lighthouse")
    gated = GatedStore(store)
    assert ctx.media_http is not None
    http = ctx.media_http
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(media_tick, ctx, gated, http)
        assert gated.writing.wait(30)
        assert media_tick(ctx, gated, http) == {"skipped": 1}
        gated.gate.set()
        assert first.result(30).get("stored") == 1
    assert load(ctx, gen_id).media_status == "stored"
    assert media_tick(ctx, gated, http).get("skipped") is None  # the lock was let go


@pytest.mark.skipif(sys.platform != "linux", reason="nice is per thread on Linux only")
@pytest.mark.parametrize("nice", [0, 7])
def test_copy_threads_run_at_a_lower_cpu_priority(
    env: tuple[WorkerContext, SimulatorServer, MediaStore, Clock], nice: int
) -> None:
    """The copies yield the CPU to polls on the host (``GENQUEUE_MEDIA_NICE``); the thread
    that runs the tick keeps its priority."""
    ctx, _, store, _ = env
    ctx = replace(ctx, limits=replace(ctx.limits, media_nice=nice))
    gen_id = completed_job(ctx, "two lighthouses", num_images=2)
    gated = GatedStore(store)
    gated.gate.set()
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert ctx.media_http is not None
    copy_due_media(ctx, gated, ctx.media_http)
    assert load(ctx, gen_id).media_status == "stored"
    assert gated.niceness == [min(mine + nice, 19)] * 2
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
