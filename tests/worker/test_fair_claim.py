"""The fair claim, called directly: a real database (PostgreSQL's LATERAL statement, SQLite's
window over every pending row), the simulator over real HTTP. Tenants with caps, weights and
priorities; a flooding tenant and a small one."""

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.keys import create_key
from models.priority import Priority
from models.status import LIVE, TERMINAL, GenerationStatus
from models.tables import Generation
from models.tenants import set_tenant
from simulator import FaultRule, SimulatorServer
from tests.support.generations import create_generation
from tests.worker.lifecycle_support import MODEL, drive, lifecycle_env, run_published
from worker.context import Limits, WorkerContext
from worker.lifecycle.dispatch import dispatch_due
from worker.lifecycle.reconcile import reconcile
from worker.lifecycle.submit_batch import submit_generations

LIVE_VALUES = [s.value for s in LIVE]


def limits(**overrides: Any) -> Limits:
    return Limits(**{"lease_seconds": 5.0, "submit_grace": 0.5, **overrides})


@pytest.fixture(autouse=True)
def nothing_left(private_sessions: sessionmaker[Session]) -> None:
    """Under a global cap the claim looks at every pending row: each test starts with none, and
    none live, left by another."""
    with private_sessions.begin() as session:
        session.execute(
            update(Generation)
            .where(Generation.status.not_in([s.value for s in TERMINAL]))
            .values(status=GenerationStatus.CANCELLED.value, next_poll_at=None)
        )


def tenant(ctx: WorkerContext, **settings: Any) -> uuid.UUID:
    name = f"t-{uuid.uuid4().hex[:8]}"
    with ctx.sessions.begin() as session:
        key, _ = create_key(session, name=name)
        if settings:
            set_tenant(session, name, settings)
        return key.tenant_id


def jobs(
    ctx: WorkerContext, tenant_id: uuid.UUID, n: int, *, priority: Priority = Priority.NORMAL
) -> list[uuid.UUID]:
    from models.generations import NewGeneration, insert_generations

    out = []
    with ctx.sessions.begin() as session:
        for i in range(n):  # one after the other, so age orders them
            [inserted] = insert_generations(
                session,
                [NewGeneration(tenant_id, MODEL, {"prompt": f"job {i}"}, priority=priority)],
                now=datetime.now(UTC),
                deadline_seconds=120,
                submit_grace_seconds=0.5,
            )
            out.append(inserted.id)
    return out


def one_job(ctx: WorkerContext, tenant_id: uuid.UUID, prompt: str) -> uuid.UUID:
    with ctx.sessions.begin() as session:
        return create_generation(
            session,
            tenant_id=tenant_id,
            model=MODEL,
            input={"prompt": prompt},
            now=datetime.now(UTC),
            deadline_seconds=120,
            submit_grace_seconds=0.5,
        ).id


def live_by_tenant(ctx: WorkerContext) -> Counter[uuid.UUID]:
    with ctx.sessions() as session:
        rows = session.execute(
            select(Generation.tenant_id, func.count())
            .where(Generation.status.in_(LIVE_VALUES))
            .group_by(Generation.tenant_id)
        ).all()
    return Counter({t: int(n) for t, n in rows})


def finish_live(ctx: WorkerContext) -> None:
    """What upstream finishing does to the slots, without waiting for it: every live row ends."""
    with ctx.sessions.begin() as session:
        session.execute(
            update(Generation)
            .where(Generation.status.in_(LIVE_VALUES))
            .values(status=GenerationStatus.COMPLETED.value, next_poll_at=None, lease_token=None)
        )


def claimed_order(ctx: WorkerContext, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The rows that were claimed, in the order of their claim (submit attempt event ids)."""
    from models.tables import GenerationEvent

    with ctx.sessions() as session:
        return list(
            session.scalars(
                select(GenerationEvent.generation_id)
                .where(
                    GenerationEvent.generation_id.in_(ids),
                    GenerationEvent.kind == "status",
                    GenerationEvent.status == GenerationStatus.SUBMITTING.value,
                )
                .order_by(GenerationEvent.id)
            ).all()
        )


def test_a_flooding_tenant_does_not_hold_back_a_small_one(
    sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(sessions, limits=limits(max_in_flight=4), run_time=30.0) as (ctx, srv, _):
        flood, small = tenant(ctx), tenant(ctx)
        flooded = jobs(ctx, flood, 40)
        assert submit_generations(ctx, flooded[:16]) == {"submitted": 4, "deferred": 12}
        assert live_by_tenant(ctx) == {flood: 4}  # a tenant alone gets the whole capacity
        mine = one_job(ctx, small, "small")
        finish_live(ctx)
        # Any message wakes the claim: here one that carries only the flood's rows.
        submit_generations(ctx, flooded[16:32])
        assert live_by_tenant(ctx) == {flood: 3, small: 1}
        order = claimed_order(ctx, [*flooded, mine])
        assert order.index(mine) == 4  # the first free slot after it arrived
        [record] = [s for s in srv.sim.submits() if s["body"]["prompt"] == "small"]
        assert record["priority"] == "normal"
        assert record["tags"].startswith("tenant=t-")


def test_weights_shift_shares(private_sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(private_sessions, limits=limits(max_in_flight=8)) as (ctx, _, _):
        heavy, light = tenant(ctx, weight=3.0), tenant(ctx)
        ids = jobs(ctx, heavy, 40) + jobs(ctx, light, 40)
        for _ in range(5):
            submit_generations(ctx, ids[:1])
            finish_live(ctx)
        claimed = Counter(by_tenant(ctx, claimed_order(ctx, ids)))
        assert sum(claimed.values()) == 40
        assert 28 <= claimed[heavy] <= 32, claimed  # 3 : 1
        assert 8 <= claimed[light] <= 12, claimed


def by_tenant(ctx: WorkerContext, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    with ctx.sessions() as session:
        owner = dict(
            (i, t)
            for i, t in session.execute(
                select(Generation.id, Generation.tenant_id).where(Generation.id.in_(ids))
            )
        )
    return [owner[i] for i in ids]


def test_priority_orders_a_tenants_own_jobs(sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(sessions, limits=limits(max_in_flight=1)) as (ctx, srv, _):
        me = tenant(ctx)
        low = jobs(ctx, me, 2, priority=Priority.LOW)
        normal = jobs(ctx, me, 2)
        high = jobs(ctx, me, 2, priority=Priority.HIGH)
        everything = [*low, *normal, *high]
        for _ in range(6):
            submit_generations(ctx, everything[:1])
            finish_live(ctx)
        assert claimed_order(ctx, everything) == [*high, *normal, *low]
        sent = {s["request_id"]: s["priority"] for s in srv.sim.submits()}
        with ctx.sessions() as session:
            upstream = dict(
                (i, r)
                for i, r in session.execute(
                    select(Generation.id, Generation.upstream_request_id).where(
                        Generation.id.in_(everything)
                    )
                )
            )
        assert [sent[upstream[i]] for i in [*high, *normal, *low]] == [
            *["normal"] * 4,
            *["low"] * 2,
        ]  # fal knows no "high"


def test_a_tenants_cap_is_never_exceeded(private_sessions: sessionmaker[Session]) -> None:
    """No global cap, a tenant capped at 2, another free; eight claims at once, then the whole
    pipeline to the end, the live count (ours and upstream's) sampled all along."""
    env = lifecycle_env(private_sessions, limits=limits(submit_batch_size=4), run_time=0.3)
    with env as (ctx, srv, rec):
        capped, free = tenant(ctx, max_in_flight=2), tenant(ctx)
        capped_ids, free_ids = jobs(ctx, capped, 16), jobs(ctx, free, 8)
        samples: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(live_by_tenant(ctx)[capped])
                time.sleep(0.01)

        waves = [capped_ids[i : i + 2] for i in range(0, 16, 2)]
        with ThreadPoolExecutor(9) as pool:
            sampler = pool.submit(sample)
            results = list(pool.map(lambda ids: submit_generations(ctx, ids), waves))
            assert sum(r.get("submitted", 0) for r in results) == 2, results
            assert submit_generations(ctx, free_ids) == {"submitted": 8}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all_ended(ctx, capped_ids + free_ids):
                dispatch_due(ctx)
                reconcile(ctx)
                run_published(ctx, rec)
                time.sleep(0.02)
            done.set()
            sampler.result()
        assert all_ended(ctx, capped_ids + free_ids)
        assert max(samples) == 2
        capped_tag = f"tenant={name_of(ctx, capped)}"
        assert all(n <= 2 for n in _per_tag_maxima(srv, capped_tag))


def _per_tag_maxima(srv: SimulatorServer, tag: str) -> list[int]:
    """Upstream's own record: at every accept of the tenant's jobs, how many of them upstream
    had accepted and not finished (its ``submitted_at`` and ``completed_at`` per job)."""
    spans = []
    for submit in srv.sim.submits():
        if submit["tags"] == tag and submit["request_id"]:
            info = srv.sim.request_info(submit["request_id"])
            assert info is not None
            spans.append((info["submitted_at"], info["completed_at"] or float("inf")))
    return [sum(1 for s, e in spans if s <= start < e) for start, _ in spans]


def name_of(ctx: WorkerContext, tenant_id: uuid.UUID) -> str:
    from models.tables import Tenant

    with ctx.sessions() as session:
        found = session.get(Tenant, tenant_id)
        assert found is not None
        return found.name


def all_ended(ctx: WorkerContext, ids: list[uuid.UUID]) -> bool:
    with ctx.sessions() as session:
        statuses = session.scalars(select(Generation.status).where(Generation.id.in_(ids))).all()
    return all(GenerationStatus(s) in TERMINAL for s in statuses)


def test_the_rows_a_claim_did_not_choose_are_deferred(
    private_sessions: sessionmaker[Session],
) -> None:
    env = lifecycle_env(private_sessions, limits=limits(max_in_flight=2), run_time=30.0)
    with env as (ctx, _, _):
        first, second = tenant(ctx), tenant(ctx)
        a = jobs(ctx, first, 3)
        b = jobs(ctx, second, 1)
        # The message carries only the first tenant's rows; the second tenant's row is claimed
        # beside the oldest of them (one slot each), the others wait.
        assert submit_generations(ctx, a) == {"submitted": 2, "deferred": 2}
        assert live_by_tenant(ctx) == {first: 1, second: 1}
        assert claimed_order(ctx, [*a, *b]) in ([a[0], *b], [*b, a[0]])


def test_under_the_cap_the_dispatcher_wakes_only_as_many_claims_as_slots_are_free(
    private_sessions: sessionmaker[Session],
) -> None:
    env = lifecycle_env(private_sessions, limits=limits(max_in_flight=3), run_time=30.0)
    with env as (ctx, _, rec):
        me = tenant(ctx)
        ids = jobs(ctx, me, 10)
        with ctx.sessions.begin() as session:  # all due: their own submit task was lost
            session.execute(
                update(Generation)
                .where(Generation.id.in_(ids))
                .values(next_poll_at=datetime.now(UTC))
            )
        assert dispatch_due(ctx)["submits"] == 3
        run_published(ctx, rec)
        assert live_by_tenant(ctx) == {me: 3}
        assert dispatch_due(ctx)["submits"] == 0  # no slot free: no claim to wake
        # The live rows' first polls may fall due by now (a slow machine): those are the
        # dispatcher's business; what must not go out is a submit.
        assert [name for name, _ in rec.drain() if name != "generation.poll_batch"] == []
        finish_live(ctx)
        assert dispatch_due(ctx)["submits"] == 3  # the other rows stayed due


def test_a_retried_row_its_message_carries_is_claimed_under_a_tenant_cap(
    private_sessions: sessionmaker[Session],
) -> None:
    """The dispatcher publishes a retried row once its delay is over and moves its
    ``next_poll_at`` a submit grace ahead; the message's claim must still take it (it once
    skipped it, and every later dispatch moved it again: the retry never went)."""
    with lifecycle_env(private_sessions, limits=limits()) as (ctx, _srv, _):
        capped = tenant(ctx, max_in_flight=2)
        [gen_id] = jobs(ctx, capped, 1)
        with ctx.sessions.begin() as session:  # after one transient failure, just dispatched
            session.execute(
                update(Generation)
                .where(Generation.id == gen_id)
                .values(
                    submit_attempts=1,
                    next_poll_at=ctx.clock() + timedelta(seconds=ctx.limits.submit_grace),
                )
            )
        assert submit_generations(ctx, [gen_id]) == {"submitted": 1}
        with ctx.sessions() as session:
            gen = session.get(Generation, gen_id)
            assert gen is not None
            assert gen.status == GenerationStatus.QUEUED.value
            assert gen.submit_attempts == 2


def test_a_submit_retry_goes_under_the_global_cap(
    private_sessions: sessionmaker[Session],
) -> None:
    """A row whose submit failed for a moment waits out its retry delay and then goes, although
    the dispatcher moves its ``next_poll_at`` a submit grace ahead each time it publishes it.
    The claim under ``max_in_flight`` once read that column as the retry time: every message
    found the row not yet due and deferred it, and the row stayed pending to its deadline."""
    env = lifecycle_env(private_sessions, limits=limits(max_in_flight=2, submit_grace=30.0))
    with env as (ctx, srv, rec):
        [gen_id] = jobs(ctx, tenant(ctx), 1)
        srv.sim.add_fault(FaultRule(op="submit", kind="http", status_code=503, times=1))
        assert submit_generations(ctx, [gen_id]) == {"retry": 1}
        gen = drive(ctx, rec, gen_id, timeout=10.0, until=LIVE | TERMINAL)
        assert gen.status != GenerationStatus.FAILED.value, gen.error
        assert gen.submit_attempts == 2
        assert gen.upstream_request_id is not None
