"""Finding a caller's own generations; another tenant's rows do not exist for them."""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.intake import waiting
from models.status import WAITING
from models.tables import Generation, GenerationEvent


def parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def owned_generation(
    session: Session, tenant_id: uuid.UUID, generation_id: str
) -> Generation | None:
    gid = parse_id(generation_id)
    if gid is None:
        return None
    return session.scalar(
        select(Generation).where(Generation.id == gid, Generation.tenant_id == tenant_id)
    )


def events_of(session: Session, generation_id: uuid.UUID) -> Sequence[GenerationEvent]:
    """A generation's history, oldest first."""
    return session.scalars(
        select(GenerationEvent)
        .where(GenerationEvent.generation_id == generation_id)
        .order_by(GenerationEvent.id)
    ).all()


def queue_position(session: Session, gen: Generation) -> int:
    """Requests in front of this one: upstream's count once it is there, before that the
    number of the same tenant's older generations still waiting to be sent upstream
    (:func:`api.intake.waiting`; other tenants' load is not revealed)."""
    if gen.status not in WAITING:
        return gen.queue_position or 0
    return waiting(session, tenant_id=gen.tenant_id, created_before=gen.created_at)
