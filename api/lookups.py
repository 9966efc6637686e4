"""Finding a caller's own generations; another tenant's rows do not exist for them."""

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.intake import MAX_COUNTED, waiting
from models.queue_estimate import fair_position
from models.status import WAITING, GenerationStatus
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


def queue_position(session: Session, gen: Generation, *, fair: bool) -> int:
    """Requests in front of this one: upstream's count once it is there; before that, its
    :func:`local_queue_position`."""
    if gen.status not in WAITING:
        return gen.queue_position or 0
    return local_queue_position(session, gen, fair=fair) or 0


def local_queue_position(session: Session, gen: Generation, *, fair: bool) -> int | None:
    """Where a job still waiting in genqueue's own queue stands; None once it was sent
    upstream. With fair scheduling (a global ``max_in_flight``): the estimate of the pending
    jobs the claim takes first (:func:`models.queue_estimate.fair_position`), which counts
    another tenant's jobs only as far as the fair order puts them before this one (never its
    whole backlog). Without a cap: the same tenant's older generations still waiting
    (:func:`api.intake.waiting`; other tenants' load is not revealed)."""
    if gen.status not in WAITING:
        return None
    if fair and gen.status == GenerationStatus.PENDING:
        return fair_position(session, gen, limit=MAX_COUNTED)
    return waiting(session, tenant_id=gen.tenant_id, created_before=gen.created_at)
