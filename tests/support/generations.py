"""Helpers over ``models`` that only tests need: one generation inserted the way the API's intake
inserts a group, a new tenant's with any columns set, one already running upstream, one
completed with files to copy, and the state machine's table asked about one transition."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.generations import NewGeneration, insert_generations
from models.keys import create_key
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


def tenant_generation(
    session: Session,
    *,
    now: datetime,
    model: str = "fal-ai/flux-pro/kontext/text-to-image",
    input: dict[str, Any] | None = None,
    deadline_seconds: float = 600,
    submit_grace_seconds: float = 5,
    **values: Any,
) -> uuid.UUID:
    """A new tenant's generation created at ``now`` (``values`` then set on its row): its id."""
    key, _ = create_key(session, name=f"t-{uuid.uuid4().hex[:8]}")
    gen = create_generation(
        session,
        tenant_id=key.tenant_id,
        model=model,
        input={"prompt": "p"} if input is None else input,
        now=now,
        deadline_seconds=deadline_seconds,
        submit_grace_seconds=submit_grace_seconds,
    )
    if values:
        session.execute(update(Generation).where(Generation.id == gen.id).values(**values))
    return gen.id


def running_upstream(
    sessions: sessionmaker[Session], *, model: str, submitted: datetime, **values: Any
) -> tuple[uuid.UUID, str]:
    """A new tenant's generation already running upstream since ``submitted`` (and ``values``
    set on its row): what a fal webhook for it finds. Its id and upstream request id."""
    request_id = str(uuid.uuid4())
    with sessions.begin() as session:
        gen_id = tenant_generation(
            session,
            now=submitted,
            model=model,
            submit_grace_seconds=2,
            status="running",
            upstream_request_id=request_id,
            submitted_at=submitted,
            **values,
        )
    return gen_id, request_id


def completed_with_files(
    sessions: sessionmaker[Session],
    files: int,
    *,
    completed_at: datetime,
    cdn: str = "http://cdn.test",
    **values: Any,
) -> uuid.UUID:
    """A new tenant's generation completed at ``completed_at`` with ``files`` image URLs under
    ``cdn``, its copy pending (and ``values`` set on its row)."""
    with sessions.begin() as session:
        gen_id = tenant_generation(
            session,
            now=completed_at,
            model="fal-ai/flux/dev",
            input={"prompt": "files"},
            deadline_seconds=60,
            submit_grace_seconds=1,
        )
        images = [{"url": f"{cdn}/{gen_id}/{i}"} for i in range(files)]
        session.execute(
            update(Generation)
            .where(Generation.id == gen_id)
            .values(
                status="completed",
                completed_at=completed_at,
                media_status="pending",
                result={"images": images},
                **values,
            )
        )
    return gen_id


def can_transition(src: GenerationStatus, dst: GenerationStatus) -> bool:
    return src in ALLOWED_FROM[dst]
