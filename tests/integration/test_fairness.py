"""Fair shares on the real stack: the API, a prefork Celery worker and beat under
``GENQUEUE_MAX_IN_FLIGHT=4``, PostgreSQL, Redis and the simulator over HTTP (a database and a
Redis database of this module's own: the claim looks at every pending row). A flooding tenant
and a small one; a tenant capped at one; the caps sampled all along, ours and upstream's."""

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from genqueue.net import wait_until
from migrations.runner import upgrade
from models.db import make_engine, make_session_factory
from models.keys import create_key
from models.status import LIVE, TERMINAL
from models.tables import Generation, Tenant
from models.tenants import set_tenant
from tests.support.services import postgres_database, redis_database
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.integration
MODEL = "fal-ai/flux-pro/kontext/text-to-image"
CAP = 4


@pytest.fixture(scope="module")
def fair_stack() -> Iterator[tuple[Stack, sessionmaker[Session]]]:
    with postgres_database() as url, redis_database() as broker:
        upgrade(url)
        engine = make_engine(url)
        env = {"GENQUEUE_MAX_IN_FLIGHT": str(CAP), "GENQUEUE_API_KEY_CACHE_SECONDS": "0"}
        try:
            with running_stack(
                database_url=url, broker_url=broker, extra_env=env, with_api=True
            ) as stack:
                stack.sim.configure(run_time=0.5, capacity=0)  # upstream never queues
                yield stack, make_session_factory(engine)
        finally:
            engine.dispose()


def tenant_key(sessions: sessionmaker[Session], **settings: object) -> tuple[str, str]:
    name = f"fair-{uuid.uuid4().hex[:8]}"
    with sessions.begin() as session:
        _, key = create_key(session, name=name)
        if settings:
            set_tenant(session, name, dict(settings))
    return name, key


def create(stack: Stack, key: str, n: int, prompt: str) -> list[uuid.UUID]:
    ids = []
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Key {key}"}) as http:
        for i in range(n):
            body = {"model": MODEL, "input": {"prompt": f"{prompt} {i}"}}
            answer = http.post("/v1/generations", json=body, timeout=10)
            assert answer.status_code == 201, answer.text
            ids.append(uuid.UUID(answer.json()["id"]))
    return ids


class LiveSampler:
    """Counts our live rows by tenant every few milliseconds until stopped."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.samples: list[Counter[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "LiveSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.sessions() as session:
                rows = session.execute(
                    select(Tenant.name, func.count())
                    .join(Generation, Generation.tenant_id == Tenant.id)
                    .where(Generation.status.in_([s.value for s in LIVE]))
                    .group_by(Tenant.name)
                ).all()
            self.samples.append(Counter({name: int(n) for name, n in rows}))
            time.sleep(0.02)


def wait_ended(sessions: sessionmaker[Session], ids: list[uuid.UUID], stack: Stack) -> None:
    def ended() -> bool:
        with sessions() as session:
            statuses = session.scalars(
                select(Generation.status).where(Generation.id.in_(ids))
            ).all()
        return all(s in TERMINAL for s in statuses)

    try:
        wait_until(ended, 180, interval=0.2, what=f"{len(ids)} jobs to end")
    except TimeoutError:
        print(stack.logs())
        raise


def upstream_overlap(stack: Stack, tag: str) -> int:
    """The most jobs sent with this ``X-Fal-Tags`` that upstream held at once, by its own
    record of each job's accept and finish."""
    spans = []
    for submit in stack.sim.submits():
        if submit.get("tags") == tag and submit["request_id"]:
            info = stack.sim.request(submit["request_id"])
            spans.append((info["submitted_at"], info["completed_at"] or float("inf")))
    return max((sum(1 for s, e in spans if s <= start < e) for start, _ in spans), default=0)


def claimed_at(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    with sessions() as session:
        rows = session.execute(
            select(Generation.id, Generation.submitted_at).where(Generation.id.in_(ids))
        ).all()
    return {i: at for i, at in rows if at is not None}


def test_a_small_tenant_is_not_held_back_by_a_flood(
    fair_stack: tuple[Stack, sessionmaker[Session]],
) -> None:
    stack, sessions = fair_stack
    flood_name, flood_key = tenant_key(sessions)
    small_name, small_key = tenant_key(sessions)
    with LiveSampler(sessions) as sampler:
        flooded = create(stack, flood_key, 40, "flood")
        wait_until(
            lambda: len(claimed_at(sessions, flooded)) >= CAP, 60, what="the flood to fill the cap"
        )
        before_small = datetime.now(UTC)
        small = create(stack, small_key, 2, "small")
        wait_ended(sessions, flooded + small, stack)
    assert max(sum(s.values()) for s in sampler.samples) <= CAP  # the global cap held
    sent = claimed_at(sessions, flooded + small)
    last_small = max(sent[i] for i in small)
    flood_between = [i for i in flooded if before_small < sent[i] < last_small]
    # First come, first served would send the rest of the flood (36 jobs) before them.
    assert len(flood_between) <= CAP, (len(flood_between), flood_name, small_name)
    assert upstream_overlap(stack, f"tenant={flood_name}") <= CAP


def test_a_tenant_cap_holds_ours_and_upstreams(
    fair_stack: tuple[Stack, sessionmaker[Session]],
) -> None:
    stack, sessions = fair_stack
    capped_name, capped_key = tenant_key(sessions, max_in_flight=1)
    free_name, free_key = tenant_key(sessions)
    with LiveSampler(sessions) as sampler:
        ids = create(stack, capped_key, 8, "capped") + create(stack, free_key, 8, "free")
        wait_ended(sessions, ids, stack)
    assert max(s[capped_name] for s in sampler.samples) == 1
    assert max(sum(s.values()) for s in sampler.samples) <= CAP
    assert max(s[free_name] for s in sampler.samples) >= 2  # the other tenant used the rest
    assert upstream_overlap(stack, f"tenant={capped_name}") == 1
