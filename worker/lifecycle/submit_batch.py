"""Send pending generations upstream in batches: one claim, concurrent submits, one write-back.

The ids of a ``generation.submit_many`` message are worked through in waves of
``limits.submit_batch_size`` (the dispatcher publishes one wave per message):

1. **Claim**: one transaction moves the still-pending rows to ``submitting`` under one lease
   token and settles the rest (skipped, deferred by ``max_in_flight``, failed past their
   deadline). The rows are read with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: a row another
   transaction holds (a duplicate delivery claiming it, the dispatcher re-publishing it, a
   cancel) is skipped, not waited for; if it is still pending afterwards, the dispatcher
   publishes it again once its ``next_poll_at`` is due. SQLite ignores the clause; its writers
   are serialized by the ``BEGIN IMMEDIATE`` that models/db.py issues, so the claim reads and
   writes under the lock too.
2. **Submit**: every claimed row is POSTed at once, each on a thread of its own over the shared
   client, outside any transaction. A wave is no larger than its thread pool, so the lease
   covers one submit's timeouts, not a queue of them; the write-back waits for the slowest.
3. **Write-back**: one transaction records every answer as ``submit_outcome.py`` says, each
   write guarded by the lease token. After the commit, upstream requests accepted for rows whose
   lease was lost (``submit_orphaned``) are cancelled, and the observer hears every outcome.

If a transaction fails, the exception is raised (the task fails and Celery logs it); nothing
is swallowed. A failed claim changes nothing: the rows stay ``pending`` and the dispatcher
publishes them again. A failed write-back (database gone) leaves the wave's rows in
``submitting`` with their lease, exactly like a worker killed mid-submit: once the lease expires
the reconciler resolves each as an ambiguous submit (the policy in ``submit_outcome.py``).
Accepted upstream jobs are not cancelled then: the commit may have landed without our hearing
of it.
A write-back that fails for one row's sake is retried answer by answer, so only the row the
database refuses is left to the reconciler.
"""

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from models.batch import each, write_together
from models.priority import Priority
from models.state import transition_many
from models.status import LIVE, GenerationStatus
from models.tables import GENERATIONS, Generation, Tenant
from worker.backoff import RunTimeEstimate
from worker.context import WorkerContext
from worker.lifecycle import fair
from worker.lifecycle.estimates import estimates_for
from worker.lifecycle.submit_outcome import (
    Answer,
    Claim,
    Recorded,
    SubmitResult,
    fail_unsent_past_deadline,
    record_answer,
)
from worker.upstream import SubmitHandle

log = logging.getLogger(__name__)
DEFER_SECONDS = 1.0
"""How long a row waits when ``max_in_flight`` has no free slot for it."""


def submit_generations(ctx: WorkerContext, generation_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """The body of ``generation.submit_many``: how many rows ended with each ``SubmitResult``."""
    ids = list(dict.fromkeys(generation_ids))
    size = max(1, ctx.limits.submit_batch_size)
    results: dict[uuid.UUID, SubmitResult] = {}
    for start in range(0, len(ids), size):
        results.update(_submit_wave(ctx, ids[start : start + size]))
    return dict(Counter(result.value for result in results.values()))


def _submit_wave(ctx: WorkerContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, SubmitResult]:
    wave = _claim(ctx, ids)
    for settled in wave.settled.values():
        settled.report(ctx.observer)
    recorded: dict[uuid.UUID, Recorded] = dict(wave.settled)
    if wave.claims:
        webhook = ctx.limits.webhook_url is not None
        estimates = estimates_for(ctx, {c.model for c in wave.claims}) if webhook else {}
        with ThreadPoolExecutor(len(wave.claims), thread_name_prefix="submit") as pool:
            answers = list(
                pool.map(lambda claim: _call(ctx, claim, estimates.get(claim.model)), wave.claims)
            )
            written = _write_back(ctx, answers)
            orphans = [r.orphan for r in written if r.orphan]
            list(pool.map(lambda handle: _cancel_orphan(ctx, handle), orphans))
        for answer, outcome in zip(answers, written, strict=True):
            outcome.report(ctx.observer)
            recorded[answer.claim.id] = outcome
    return {i: outcome.result for i, outcome in recorded.items()}


@dataclass(frozen=True)
class Wave:
    claims: list[Claim]
    """Rows now ``submitting`` under one lease token, oldest first."""
    settled: dict[uuid.UUID, Recorded]
    """Rows that will not be sent: not pending (skipped), over the cap (deferred), or failed
    because their deadline passed."""


def _claim(ctx: WorkerContext, generation_ids: Sequence[uuid.UUID]) -> Wave:
    """Move pending rows to ``submitting`` with a lease, as far as the caps leave room, each
    with the ``status`` event ``transition`` writes; settle every id of the message. One
    transaction, whatever the count.

    Without any cap the message's own pending rows go, oldest first. Under a cap (global or
    a tenant's) claims take turns (``CAP_LOCK``) and the rows are chosen by ``fair.pick``: under
    the global cap from *every* eligible pending row, not only the message's, so whichever
    worker finds a free slot fills it with the job the fair order says is next (a message is
    then a wake-up call; its rows not chosen are deferred, and a chosen row another message
    also carries is skipped by that message's claim). Under tenant caps alone, from the
    message's rows."""
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        capped = bool(ctx.limits.max_in_flight) or _tenant_caps(session)
        if capped:
            _take_turn(session)
        rows = _lock_pending(session, generation_ids)
        settled = {i: Recorded(SubmitResult.SKIPPED) for i in generation_ids}
        due: list[Generation] = []
        for gen in rows:
            if now >= gen.deadline_at:
                won = fail_unsent_past_deadline(session, gen, now=now)
                ended = (gen.created_at, now) if won else None
                settled[gen.id] = Recorded(SubmitResult.FAILED, ended=ended)
            else:
                due.append(gen)
        picks: list[fair.Pick] = []
        chosen = due
        if capped:
            chosen, picks = _choose(ctx, session, due, now=now)
        taken = {gen.id for gen in chosen}
        held = [gen.id for gen in due if gen.id not in taken]
        for gen_id in held:
            settled[gen_id] = Recorded(SubmitResult.DEFERRED)
        _defer(session, held, now=now)
        claims = _to_submitting(ctx, session, chosen, now=now)
        claimed = {claim.id for claim in claims}
        fair.charge(session, [p for p in picks if p.id in claimed])
    for claim in claims:
        settled.pop(claim.id, None)
    return Wave(claims, settled)


def _lock_pending(session: Session, ids: Iterable[uuid.UUID]) -> list[Generation]:
    return list(
        session.scalars(
            select(Generation)
            .where(
                Generation.id.in_(list(ids)), Generation.status == GenerationStatus.PENDING.value
            )
            .order_by(Generation.created_at, Generation.id)
            .with_for_update(skip_locked=True)
        ).all()
    )


def _choose(
    ctx: WorkerContext, session: Session, due: list[Generation], *, now: datetime
) -> tuple[list[Generation], list[fair.Pick]]:
    """The rows to claim, in fair order, and their picks (tags to charge once claimed)."""
    if ctx.limits.max_in_flight:
        free = _free_slots(ctx, session, wanted=max(1, ctx.limits.submit_batch_size))
        within = None
    else:
        free, within = len(due), [g.id for g in due]
    if not free:
        return [], []
    found = estimates_for(ctx, {g.model for g in due}, session=session)
    costs = {model: estimate.p50 for model, estimate in found.items()}
    picks = fair.pick(session, now=now, limit=free, within=within, costs=costs)
    if not picks:
        return [], []
    by_id = {gen.id: gen for gen in _lock_pending(session, [p.id for p in picks])}
    chosen = [by_id[p.id] for p in picks if p.id in by_id]
    return chosen, [p for p in picks if p.id in by_id]


CAP_LOCK = 0x67_656E_7175_6575  # "genqueue" in the advisory-lock key space of the database
"""The PostgreSQL advisory lock that serializes claims under a cap."""


def _tenant_caps(session: Session) -> bool:
    return bool(session.scalar(select(exists().where(Tenant.max_in_flight.is_not(None)))))


def _take_turn(session: Session) -> None:
    """Under a cap, claims take turns: on PostgreSQL a transaction-scoped advisory lock is held
    from the count of live rows to the claim's commit, so a concurrent claim counts this one's
    rows as live (two claims that counted at once would both take the same free slots; the cap
    was seen at twice its value). SQLite's ``BEGIN IMMEDIATE`` already serializes writers."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CAP_LOCK)))


def _free_slots(ctx: WorkerContext, session: Session, *, wanted: int) -> int:
    """How many rows may go upstream now under the global cap: what it leaves after the rows
    already live, at most ``wanted``. Called with the turn taken (:func:`_take_turn`)."""
    if not ctx.limits.max_in_flight or not wanted:
        return wanted
    live = session.scalar(
        select(func.count())
        .select_from(Generation)
        .where(Generation.status.in_([s.value for s in LIVE]))
    )
    return max(0, min(wanted, ctx.limits.max_in_flight - int(live or 0)))


def _defer(session: Session, ids: list[uuid.UUID], *, now: datetime) -> None:
    if ids:
        session.execute(
            update(Generation)
            .where(Generation.id.in_(ids), Generation.status == GenerationStatus.PENDING.value)
            .values(next_poll_at=now + timedelta(seconds=DEFER_SECONDS), updated_at=now)
            .execution_options(synchronize_session=False)
        )


def _to_submitting(
    ctx: WorkerContext, session: Session, rows: list[Generation], *, now: datetime
) -> list[Claim]:
    token = str(uuid.uuid4())
    won = set(
        transition_many(
            session,
            [gen.id for gen in rows],
            to=GenerationStatus.SUBMITTING,
            now=now,
            allowed_from={GenerationStatus.PENDING},
            values={
                "submit_attempts": GENERATIONS.c.submit_attempts + 1,
                "lease_token": token,
                "lease_until": now + timedelta(seconds=ctx.limits.lease_seconds),
                "next_poll_at": None,
                "retry_at": None,
            },
            details={gen.id: {"attempt": gen.submit_attempts + 1} for gen in rows},
        )
    )
    tenants = {gen.tenant_id for gen in rows}
    names = {
        t: name
        for t, name in session.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(tenants)))
    }
    return [
        Claim(
            gen.id,
            gen.model,
            dict(gen.input),
            token,
            gen.submit_attempts + 1,
            gen.created_at,
            tenant=names.get(gen.tenant_id, ""),
            priority=Priority.of_rank(gen.priority),
        )
        for gen in rows
        if gen.id in won
    ]


def _call(ctx: WorkerContext, claim: Claim, estimate: RunTimeEstimate | None) -> Answer:
    webhook = ctx.limits.webhook_url
    try:
        handle = ctx.client.submit(
            claim.model,
            claim.input,
            start_timeout=ctx.limits.start_timeout,
            webhook_url=webhook,
            priority=claim.priority.upstream,
            tags={"tenant": claim.tenant},
        )
    except Exception as exc:  # classified by record_answer, in the write-back
        return Answer(claim, exc, ctx.clock())
    return Answer(claim, handle, ctx.clock(), webhook=webhook is not None, estimate=estimate)


def _write_back(ctx: WorkerContext, answers: list[Answer]) -> list[Recorded]:
    def refused(answer: Answer, _: Exception) -> Recorded:
        # Left in ``submitting`` under its lease, as if this worker had died mid-submit: the
        # reconciler resolves it by the ambiguous-submit policy once the lease expires. (Had
        # the whole wave been left so, every row of it would have been resubmitted.)
        return Recorded(SubmitResult.AMBIGUOUS)

    return write_together(
        ctx.sessions,
        answers,
        each(lambda session, answer: record_answer(ctx, session, answer)),
        refused=refused,
        what="submit",
    )


def _cancel_orphan(ctx: WorkerContext, handle: SubmitHandle) -> None:
    try:
        ctx.client.cancel(handle.cancel_url)
    except Exception:
        log.warning("could not cancel orphaned upstream request %s", handle.request_id)
