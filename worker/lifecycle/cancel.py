"""Cancellation: the wish is state (``cancel_requested_at``); the upstream PUT is claimed once."""

import logging
import uuid
from typing import Any

from sqlalchemy import select

from models.generations import request_cancel
from models.state import record_event, update_where
from models.status import ACTIVE, LIVE
from models.tables import GENERATIONS, Generation
from models.vocabulary import EventKind
from worker.context import WorkerContext
from worker.upstream import UpstreamCancelOutcome, UpstreamError

log = logging.getLogger(__name__)


def cancel_generation(ctx: WorkerContext, generation_id: uuid.UUID) -> str:
    """The body of ``generation.cancel``: make sure the wish is recorded, then tell upstream."""
    with ctx.sessions.begin() as session:
        answer = request_cancel(session, generation_id, now=ctx.clock())
        gen = session.scalar(select(Generation).where(Generation.id == generation_id))
        if gen is None or gen.status not in ACTIVE or gen.cancel_sent_at:
            return answer.outcome.value
        cancel_url = gen.cancel_url or ""
    outcome = send_cancel(ctx, generation_id, cancel_url)
    with ctx.sessions.begin() as session:
        # Look again soon: upstream settles a cancelled job quickly.
        update_where(
            session,
            generation_id,
            now=ctx.clock(),
            statuses=ACTIVE,
            values={"next_poll_at": ctx.clock()},
        )
    return outcome or answer.outcome.value


def send_cancel(
    ctx: WorkerContext, generation_id: uuid.UUID, cancel_url: str, *, reason: str = "asked"
) -> str | None:
    """Claim the cancel (``cancel_sent_at``), PUT it upstream, record the answer and why it was
    sent (``reason``: ``asked`` by the client, the ``deadline``, ``retries_exhausted``).

    Returns the upstream outcome, or None if another worker had already sent it or the call
    failed (then the claim is released so a later poll tries again).
    """
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        if not update_where(
            session,
            generation_id,
            now=now,
            statuses=LIVE,
            values={"cancel_sent_at": now},
            where=[GENERATIONS.c.cancel_sent_at.is_(None)],
        ):
            return None
    try:
        outcome: UpstreamCancelOutcome | None = ctx.client.cancel(cancel_url)
        detail: dict[str, Any] = {"outcome": str(outcome), "reason": reason}
    except UpstreamError as exc:
        outcome = None
        detail = {"error": exc.message, "http_status": exc.http_status, "reason": reason}
    with ctx.sessions.begin() as session:
        if outcome is None:
            update_where(
                session,
                generation_id,
                now=ctx.clock(),
                statuses=LIVE,
                values={"cancel_sent_at": None},
            )
        record_event(
            session, generation_id, kind=EventKind.CANCEL_SENT, now=ctx.clock(), detail=detail
        )
    if outcome is None:
        ctx.observer.retry("cancel")
        return None
    return str(outcome)
