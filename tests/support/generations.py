"""Helpers over ``models`` that only tests need: one generation inserted the way the API's intake
inserts a group, and the state machine's table asked about one transition."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from models.generations import NewGeneration, insert_generations
from models.status import ALLOWED_FROM, GenerationStatus
from models.tables import Generation


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
    """One generation through :func:`insert_generations`, loaded as an ORM object. A taken
    idempotency key raises ``ValueError`` (callers that replay use the batch function)."""
    [outcome] = insert_generations(
        session,
        [NewGeneration(tenant_id, model, input, idempotency_key, request_hash, webhook_url)],
        now=now,
        deadline_seconds=deadline_seconds,
        submit_grace_seconds=submit_grace_seconds,
    )
    if not outcome.created:
        raise ValueError(f"idempotency key {idempotency_key!r} is held by {outcome.id}")
    gen = session.get(Generation, outcome.id)
    assert gen is not None
    return gen


def can_transition(src: GenerationStatus, dst: GenerationStatus) -> bool:
    return src in ALLOWED_FROM[dst]
