"""B5 fair shares under a cap: three tenants, one flooding, ``max_in_flight`` slots. Jain's
fairness index of the slot-seconds each tenant held while all three had work waiting, and what
the fair claim costs per job, each beside the first-come claim (genqueue before fair scheduling)
measured in the same run on the same workload.

The worker's lifecycle functions run in this process (dispatch, submit, poll, reconcile, on a
thread pool like a worker's slots) against the stack's PostgreSQL and simulator over HTTP, so
the only difference between the two phases is the claim. A job holds a slot from its claim
(``submitting``) to its terminal status, which is what the cap counts.
"""

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from benchmarks.results import BenchResult
from benchmarks.scale import Scale
from benchmarks.stack import SIM_KEY, Stack
from models import tasknames
from models.generations import NewGeneration, insert_generations
from models.keys import create_key
from models.status import TERMINAL, GenerationStatus
from models.tables import Generation, GenerationEvent
from worker.backoff import BackoffPolicy
from worker.context import Limits, WorkerContext
from worker.lifecycle import submit_batch
from worker.lifecycle.dispatch import dispatch_due
from worker.lifecycle.poll import poll_generations
from worker.lifecycle.reconcile import reconcile
from worker.lifecycle.submit_batch import Wave, submit_generations
from worker.lifecycle.submit_outcome import Recorded, SubmitResult, fail_unsent_past_deadline
from worker.upstream import UpstreamClient

MODEL = "fal-ai/flux-pro/kontext/text-to-image"
TARGET_JAIN = 0.95
TARGET_OVERHEAD = 0.10
POLICY = BackoffPolicy(
    min_delay=0.05, max_delay=0.5, jitter=0.0, error_min_delay=0.1, error_max_delay=1.0
)


def run(stack: Stack, scale: Scale) -> BenchResult:
    result = BenchResult("B5", "Fair shares under a cap")
    jobs = {"flood": scale.b5_flood_jobs, "b": scale.b5_small_jobs, "c": scale.b5_small_jobs}
    result.params = {
        "max_in_flight": scale.b5_cap,
        "run_time": scale.b5_run_time,
        "jobs": jobs,
        "weights": "equal",
        "worker_threads": scale.b5_threads,
    }
    fair = _phase(stack, scale, jobs, first_come=False)
    first = _phase(stack, scale, jobs, first_come=True)
    result.figures = {"fair": fair, "first_come": first}
    result.row(
        "Jain's index of slot-seconds (all three waiting)",
        fair["jain"],
        "",
        baseline="first-come claim",
        baseline_value=first["jain"],
        target=f"≥{TARGET_JAIN:g}",
        met=fair["jain"] >= TARGET_JAIN,
    )
    result.row(
        "claim time per claimed job",
        fair["claim_ms_per_job"],
        "ms",
        baseline="first-come claim",
        baseline_value=first["claim_ms_per_job"],
    )
    share = 100 / first["ms_per_job"]
    added = (fair["claim_ms_per_job"] - first["claim_ms_per_job"]) * share
    result.row(
        "claim, share of a job's worker time",
        fair["claim_ms_per_job"] * share,
        "%",
        baseline="first-come claim",
        baseline_value=first["claim_ms_per_job"] * share,
        target=f"added ≤{TARGET_OVERHEAD * 100:g} %",
        met=added <= TARGET_OVERHEAD * 100,
    )
    result.notes.append(
        f"{sum(jobs.values())} jobs of {scale.b5_run_time:g} s, all created at once (the flood "
        f"first), {scale.b5_cap} slots; slot-seconds counted from a job's claim to its end, "
        "within the window in which every tenant still had pending work; a job's worker time "
        "is the time the first-come phase's tasks (claims, submits, polls, write-backs) ran, "
        "per job "
        f"({first['ms_per_job']:.1f} ms); the fair claim added {added:.2f} % of it; the small "
        f"tenants' first job was claimed {fair['small_first_claim_s']:.2f} s after the first "
        f"claim (first-come: {first['small_first_claim_s']:.2f} s)"
    )
    return result


@dataclass
class _Timed:
    seconds: float = 0.0
    claimed: int = 0
    calls: int = 0


@contextmanager
def _timed_claim(first_come: bool) -> Iterator[_Timed]:
    """Swap the worker's claim for a timed one (the first-come one for the baseline)."""
    real = submit_batch._claim
    inner = _first_come_claim if first_come else real
    timed = _Timed()
    lock = threading.Lock()

    def claim(ctx: WorkerContext, generation_ids: Sequence[uuid.UUID]) -> Wave:
        began = time.perf_counter()
        wave = inner(ctx, generation_ids)
        elapsed = time.perf_counter() - began
        with lock:
            timed.seconds += elapsed
            timed.claimed += len(wave.claims)
            timed.calls += 1
        return wave

    submit_batch._claim = claim
    try:
        yield timed
    finally:
        submit_batch._claim = real


def _first_come_claim(ctx: WorkerContext, ids: Sequence[uuid.UUID]) -> Wave:
    """genqueue's claim before fair scheduling (commit 354ad15): under the cap, the message's
    own pending rows, oldest first, as far as the free slots go."""
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        submit_batch._take_turn(session)
        rows = submit_batch._lock_pending(session, ids)
        settled = {i: Recorded(SubmitResult.SKIPPED) for i in ids}
        due = []
        for gen in rows:
            if now >= gen.deadline_at:
                fail_unsent_past_deadline(session, gen, now=now)
                settled[gen.id] = Recorded(SubmitResult.FAILED)
            else:
                due.append(gen)
        free = submit_batch._free_slots(ctx, session, wanted=len(due))
        for gen in due[free:]:
            settled[gen.id] = Recorded(SubmitResult.DEFERRED)
        submit_batch._defer(session, [gen.id for gen in due[free:]], now=now)
        claims = submit_batch._to_submitting(ctx, session, due[:free], now=now)
    for claim in claims:
        del settled[claim.id]
    return Wave(claims, settled)


def _phase(stack: Stack, scale: Scale, jobs: dict[str, int], *, first_come: bool) -> dict[str, Any]:
    stack.reset(run_time=scale.b5_run_time, run_time_jitter=0.0, capacity=0)
    published: list[tuple[str, list[Any]]] = []
    client = UpstreamClient(base_url=stack.sim_url, key=SIM_KEY, read_timeout=30.0)
    ctx = WorkerContext(
        sessions=stack.sessions,
        client=client,
        publish=lambda name, args: published.append((name, list(args))),
        policy=POLICY,
        limits=Limits(max_in_flight=scale.b5_cap, submit_grace=2.0, lease_seconds=30.0),
    )
    owners = _create(ctx, jobs)
    ids = list(owners)
    busy = _Timed()
    lock = threading.Lock()

    def run_task(task: tuple[str, list[Any]]) -> None:
        began = time.perf_counter()
        _run(ctx, task)
        elapsed = time.perf_counter() - began
        with lock:
            busy.seconds += elapsed

    with _timed_claim(first_come) as timed, ThreadPoolExecutor(scale.b5_threads) as pool:
        deadline = time.monotonic() + scale.phase_timeout
        while not _all_ended(ctx, ids):
            if time.monotonic() > deadline:
                raise RuntimeError("B5: the jobs did not end in time")
            dispatch_due(ctx)
            reconcile(ctx)
            tasks, published[:] = list(published), []
            list(pool.map(run_task, tasks))
            time.sleep(scale.b5_tick)
    client.close()
    held = _slot_spans(ctx, ids)
    shares = _window_shares(held, owners)
    small_first = min(
        start for gen_id, (start, _) in held.items() if owners[gen_id] != "flood"
    ) - min(start for start, _ in held.values())
    return {
        "slot_seconds": shares,
        "jain": jain(list(shares.values())),
        "small_first_claim_s": small_first,
        "claim_ms_per_job": timed.seconds * 1000 / max(timed.claimed, 1),
        "ms_per_job": busy.seconds * 1000 / len(ids),
        "claimed": timed.claimed,
        "claims": timed.calls,
        "claim_ms_mean": timed.seconds * 1000 / max(timed.calls, 1),
    }


def _create(ctx: WorkerContext, jobs: dict[str, int]) -> dict[uuid.UUID, str]:
    """Each tenant's jobs, the flood first, one create per job (as an API would), and the
    ``generation.submit_many`` messages the API publishes for them."""
    owners: dict[uuid.UUID, str] = {}
    with ctx.sessions.begin() as session:
        for name, count in jobs.items():
            key, _ = create_key(session, name=f"b5-{name}-{uuid.uuid4().hex[:6]}")
            for i in range(count):
                [row] = insert_generations(
                    session,
                    [NewGeneration(key.tenant_id, MODEL, {"prompt": f"b5 {name} {i}"})],
                    now=datetime.now(UTC),
                    deadline_seconds=3600,
                    submit_grace_seconds=2.0,
                )
                owners[row.id] = name
    ids = [str(i) for i in owners]
    for start in range(0, len(ids), 16):
        ctx.publish(tasknames.SUBMIT_MANY, [ids[start : start + 16]])
    return owners


def _run(ctx: WorkerContext, task: tuple[str, list[Any]]) -> None:
    name, args = task
    if name == tasknames.SUBMIT_MANY:
        submit_generations(ctx, [uuid.UUID(i) for i in args[0]])
    elif name == tasknames.POLL_BATCH:
        poll_generations(ctx, [uuid.UUID(i) for i in args[0]], args[1])


def _all_ended(ctx: WorkerContext, ids: list[uuid.UUID]) -> bool:
    with ctx.sessions() as session:
        statuses = session.scalars(select(Generation.status).where(Generation.id.in_(ids))).all()
    return all(GenerationStatus(s) in TERMINAL for s in statuses)


def _slot_spans(ctx: WorkerContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[float, float]]:
    """Each job's slot: from its first claim to its end, in seconds since the epoch."""
    with ctx.sessions() as session:
        claimed = dict(
            session.execute(
                select(GenerationEvent.generation_id, GenerationEvent.at).where(
                    GenerationEvent.generation_id.in_(ids),
                    GenerationEvent.status == GenerationStatus.SUBMITTING.value,
                )
            ).all()
        )
        ended = dict(
            session.execute(
                select(Generation.id, Generation.completed_at).where(Generation.id.in_(ids))
            ).all()
        )
    spans = {}
    for i in ids:
        start, end = claimed.get(i), ended.get(i)
        if start is not None and end is not None:
            spans[i] = (start.timestamp(), end.timestamp())
    return spans


def _window_shares(
    held: dict[uuid.UUID, tuple[float, float]], owners: dict[uuid.UUID, str]
) -> dict[str, float]:
    """Slot-seconds per tenant from the first claim until the first moment a tenant had nothing
    left to claim (its last claim): the span in which every tenant was asking for slots."""
    last_claim: dict[str, float] = defaultdict(float)
    for gen_id, (start, _) in held.items():
        last_claim[owners[gen_id]] = max(last_claim[owners[gen_id]], start)
    begin = min(start for start, _ in held.values())
    end = min(last_claim.values())
    shares = {name: 0.0 for name in set(owners.values())}
    for gen_id, (start, stop) in held.items():
        shares[owners[gen_id]] += max(0.0, min(stop, end) - max(start, begin))
    return shares


def jain(values: Sequence[float]) -> float:
    """Jain's fairness index: 1 when all are equal, 1/n when one has everything."""
    total = sum(values)
    squares = sum(v * v for v in values)
    return total * total / (len(values) * squares) if squares else 0.0
