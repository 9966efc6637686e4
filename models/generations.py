"""Creating generations and asking for their cancellation (shared by the API and the worker)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from models.state import record_event, transition, update_where
from models.status import TERMINAL, GenerationStatus
from models.tables import Generation

S = GenerationStatus


def create_generation(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    model: str,
    input: dict[str, Any],
    now: datetime,
    deadline_seconds: float,
    submit_grace_seconds: float,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    webhook_url: str | None = None,
) -> Generation:
    """Insert a pending generation and its first event. The caller commits, then publishes.

    ``next_poll_at`` is set ``submit_grace_seconds`` ahead: if the publish after commit is lost,
    the dispatcher finds the row then and submits it.
    """
    gen = Generation(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        model=model,
        input=input,
        status=S.PENDING.value,
        created_at=now,
        updated_at=now,
        deadline_at=now + timedelta(seconds=deadline_seconds),
        next_poll_at=now + timedelta(seconds=submit_grace_seconds),
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        webhook_url=webhook_url,
    )
    session.add(gen)
    session.flush()
    record_event(session, gen.id, kind="created", now=now, status=S.PENDING)
    return gen


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"
    """It had not been sent upstream: it is cancelled now."""
    REQUESTED = "requested"
    """It is upstream: a worker will ask upstream to cancel and keep polling until it settles."""
    ALREADY_REQUESTED = "already_requested"
    ALREADY_TERMINAL = "already_terminal"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class CancelAnswer:
    outcome: CancelOutcome
    status: GenerationStatus | None


def request_cancel(session: Session, generation_id: uuid.UUID, *, now: datetime) -> CancelAnswer:
    """Cancellation is state, not ``revoke``: record the wish; end it now if nothing was sent."""
    gen = session.get(Generation, generation_id, with_for_update=True, populate_existing=True)
    if gen is None:
        return CancelAnswer(CancelOutcome.NOT_FOUND, None)
    status = S(gen.status)
    if status in TERMINAL:
        return CancelAnswer(CancelOutcome.ALREADY_TERMINAL, status)
    if status is S.PENDING and transition(
        session,
        gen.id,
        to=S.CANCELLED,
        now=now,
        allowed_from={S.PENDING},
        values={"cancel_requested_at": now, "completed_at": now, "next_poll_at": None},
        event_kind="cancelled",
        detail={"reason": "cancelled before it was sent upstream"},
    ):
        return CancelAnswer(CancelOutcome.CANCELLED, S.CANCELLED)
    if gen.cancel_requested_at is not None:
        return CancelAnswer(CancelOutcome.ALREADY_REQUESTED, status)
    live = {S.SUBMITTING, S.QUEUED, S.RUNNING}
    if update_where(
        session,
        gen.id,
        now=now,
        statuses=live,
        values={"cancel_requested_at": now, "next_poll_at": now},
        where=[Generation.cancel_requested_at.is_(None)],
    ):
        record_event(session, gen.id, kind="cancel_requested", now=now, status=status)
        return CancelAnswer(CancelOutcome.REQUESTED, status)
    session.refresh(gen)
    return request_cancel(session, generation_id, now=now)
