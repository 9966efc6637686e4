"""Deleting a generation's outputs: on request (``DELETE /v1/generations/{id}``) and by the
retention sweeps, through one path.

:func:`tombstone` does the part that must be at once, in the caller's transaction: the
result and the input are cleared (the row stays as a tombstone: ids, times, status, model,
error without upstream's body), ``media_status`` becomes ``deleted``, and every file row
``deleting``, so its URL answers 404 from then on. The media tick then removes the stored
objects (:func:`deleting_files`, :func:`forget_files`), outside any transaction: an API or
worker that dies in between leaves rows still ``deleting``, which the next tick finishes. A
file whose copy is in flight (its lease held) waits for that lease, so a copy that lands late
is deleted too.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session

from models.media import object_key
from models.state import record_event
from models.status import TERMINAL
from models.tables import GENERATIONS, MEDIA_FILES
from models.vocabulary import EventKind

DELETED = "deleted"
DELETING = "deleting"


def tombstone(
    session: Session, generation_ids: Sequence[uuid.UUID], now: datetime, *, reason: str
) -> int:
    """Clear the outputs of these terminal generations (see the module docstring); how many.
    Generations already deleted, or not terminal, are left alone."""
    g = GENERATIONS.c
    rows = session.execute(
        select(g.id, g.error)
        .where(
            g.id.in_(generation_ids),
            g.status.in_([s.value for s in TERMINAL]),
            or_(g.media_status.is_(None), g.media_status != DELETED),
        )
        .with_for_update()
    ).all()
    for gen_id, error in rows:
        session.execute(
            update(GENERATIONS)
            .where(g.id == gen_id)
            .values(
                result=None,
                input={},
                error=_without_body(error),
                media_status=DELETED,
                updated_at=now,
            )
        )
        record_event(session, gen_id, kind=EventKind.MEDIA_DELETED, now=now, detail={"by": reason})
    if rows:
        session.execute(
            update(MEDIA_FILES)
            .where(MEDIA_FILES.c.generation_id.in_([r.id for r in rows]))
            .values(status=DELETING, next_at=now)
        )
    return len(rows)


def _without_body(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """The error's summary; upstream's body may echo the input, so it goes with it."""
    return {k: v for k, v in error.items() if k != "body"} if error else error


def ended_before(
    session: Session,
    cutoff: datetime,
    *,
    limit: int,
    with_files_only: bool = False,
) -> list[uuid.UUID]:
    """Up to ``limit`` terminal generations that ended before ``cutoff`` and still have their
    outputs, oldest first; with ``with_files_only``, only those with file rows. A job whose
    client webhook is still being tried keeps its outputs until that ends (the webhook
    carries the result). Rows another transaction holds are skipped."""
    g = GENERATIONS.c
    query = select(g.id).where(
        g.status.in_([s.value for s in TERMINAL]),
        g.completed_at < cutoff,
        or_(g.media_status.is_(None), g.media_status != DELETED),
        or_(
            g.webhook_url.is_(None),
            g.webhook_delivered_at.is_not(None),
            g.webhook_stopped_at.is_not(None),
        ),
    )
    if with_files_only:
        query = query.where(~has_no_files())
    return list(
        session.scalars(
            query.order_by(g.completed_at).limit(limit).with_for_update(skip_locked=True)
        ).all()
    )


def deleting_files(session: Session, now: datetime, *, limit: int) -> list[tuple[int, str]]:
    """``(id, object key)`` of up to ``limit`` files to remove from the store now."""
    f = MEDIA_FILES.c
    rows = session.execute(
        select(f.id, f.generation_id, f.position)
        .where(f.status == DELETING, or_(f.lease_until.is_(None), f.lease_until <= now))
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return [(r.id, object_key(r.generation_id, r.position)) for r in rows]


def forget_files(session: Session, file_ids: Sequence[int]) -> None:
    """Drop the rows of files whose objects are gone from the store."""
    session.execute(
        delete(MEDIA_FILES).where(MEDIA_FILES.c.id.in_(file_ids), MEDIA_FILES.c.status == DELETING)
    )


def has_no_files() -> Any:
    """A condition on ``generations``: no file row is left (the job's row may go)."""
    return ~exists().where(MEDIA_FILES.c.generation_id == GENERATIONS.c.id)
