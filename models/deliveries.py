"""The client webhook delivery log, and redelivery on the tenant's request."""

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from models.status import TERMINAL
from models.tables import DELIVERIES, GENERATIONS, WebhookDelivery

EXCERPT_CHARS = 1024


@dataclass(frozen=True)
class Attempt:
    """One attempt, as the log keeps it."""

    generation_id: uuid.UUID
    at: datetime
    attempt: int
    url: str
    outcome: str
    http_status: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str | None


def log_attempt(session: Session, attempt: Attempt) -> None:
    excerpt = attempt.response_excerpt
    session.execute(
        insert(DELIVERIES).values(
            generation_id=attempt.generation_id,
            at=attempt.at,
            attempt=attempt.attempt,
            url=attempt.url,
            outcome=attempt.outcome,
            http_status=attempt.http_status,
            error=(attempt.error or None) and attempt.error[:300],
            duration_ms=attempt.duration_ms,
            response_excerpt=excerpt[:EXCERPT_CHARS] if excerpt else None,
        )
    )


def attempts_of(session: Session, generation_id: uuid.UUID) -> Sequence[WebhookDelivery]:
    """A generation's delivery attempts, oldest first."""
    return session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.generation_id == generation_id)
        .order_by(WebhookDelivery.id)
    ).all()


class Redelivery(enum.StrEnum):
    SCHEDULED = "scheduled"
    """The final payload is due again now (the next delivery tick sends it)."""
    NOT_ENDED = "not_ended"
    """The generation has not ended: there is nothing to deliver yet."""
    NO_WEBHOOK = "no_webhook"
    """The generation has no webhook_url."""
    IN_FLIGHT = "in_flight"
    """An attempt is under way: ask again once it is recorded."""


def schedule_redelivery(session: Session, gen_id: uuid.UUID, *, now: datetime) -> Redelivery:
    """Make an ended generation's webhook due again, as a fresh delivery (its retries start
    over), unless an attempt is in flight: a compare-and-set on the lease."""
    g = GENERATIONS.c
    row = session.execute(
        select(g.status, g.webhook_url, g.webhook_lease_until).where(g.id == gen_id)
    ).one()
    if row.status not in {s.value for s in TERMINAL}:
        return Redelivery.NOT_ENDED
    if row.webhook_url is None:
        return Redelivery.NO_WEBHOOK
    won = session.execute(
        update(GENERATIONS)
        .where(g.id == gen_id, or_(g.webhook_lease_until.is_(None), g.webhook_lease_until <= now))
        .values(
            webhook_delivered_at=None,
            webhook_stopped_at=None,
            webhook_attempts=0,
            webhook_next_at=now,
            updated_at=now,
        )
    ).rowcount  # type: ignore[attr-defined]
    return Redelivery.SCHEDULED if won == 1 else Redelivery.IN_FLIGHT
