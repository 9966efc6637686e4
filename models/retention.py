"""Retention: deleting jobs that ended long enough ago, with their events, a batch at a time."""

from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from models.media_deletion import has_no_files
from models.status import TERMINAL
from models.tables import DELIVERIES, EVENTS, GENERATIONS


def delete_ended_before(session: Session, cutoff: datetime, *, limit: int) -> int:
    """Delete up to ``limit`` generations that ended before ``cutoff`` and their events, oldest
    first, in the caller's transaction; return how many. A job whose client webhook is still
    being tried (neither delivered nor stopped) is kept until that ends, and so is one with
    stored files left (the sweep tombstones it first, and the media tick removes its files).
    Rows another transaction holds are skipped (PostgreSQL), not waited for."""
    g = GENERATIONS.c
    ids = list(
        session.scalars(
            select(g.id)
            .where(
                g.status.in_([s.value for s in TERMINAL]),
                g.completed_at < cutoff,
                or_(
                    g.webhook_url.is_(None),
                    g.webhook_delivered_at.is_not(None),
                    g.webhook_stopped_at.is_not(None),
                ),
                has_no_files(),
            )
            .order_by(g.completed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
    )
    if ids:
        session.execute(delete(EVENTS).where(EVENTS.c.generation_id.in_(ids)))
        session.execute(delete(DELIVERIES).where(DELIVERIES.c.generation_id.in_(ids)))
        session.execute(delete(GENERATIONS).where(g.id.in_(ids)))
    return len(ids)
