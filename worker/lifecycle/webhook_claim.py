"""Which client webhook deliveries may start now: bounded in total and per destination.

A delivery in flight holds its row's ``webhook_lease_until``; the database counts them, so the
bounds hold across every webhook worker. A claim takes, among the due deliveries, at most
``webhook_concurrency`` in flight in all and ``webhook_per_destination`` to one
``scheme://host:port``, sharing the free slots round-robin among destinations (the one waiting
longest first). Many deliveries to one dead receiver therefore hold a few slots, never all of
them, and a healthy receiver's delivery waits for no dead one.

Claims are serialized (PostgreSQL: a transaction-scoped advisory lock; SQLite: its one writer),
so two claims never both count the same free slot.
"""

import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from models.media import copy_not_awaited
from models.status import TERMINAL
from models.tables import GENERATIONS, Generation
from worker.context import WorkerContext

LABEL_BATCH = 1000
"""Due rows whose destination is worked out per claim at most (each row needs it once)."""
CLAIM_LOCK = 0x67_71_77_68  # "gqwh": the advisory lock key that serializes webhook claims


@dataclass(frozen=True)
class Due:
    """A delivery this worker may make now, until ``lease_until``."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    attempts: int
    lease_until: datetime
    payload: dict[str, Any]


def destination_of(url: str) -> str:
    """``scheme://host:port`` of a webhook URL, the unit of the per-destination cap."""
    try:
        parsed = httpx.URL(url)
        port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
        return f"{parsed.scheme}://{parsed.host}:{port}"[:300]
    except (httpx.InvalidURL, TypeError, ValueError):
        return "invalid"


def share(
    waiting: Mapping[str, int], busy: Mapping[str, int], free: int, per_destination: int
) -> dict[str, int]:
    """How many deliveries to start per destination: ``free`` slots dealt round-robin, in the
    order of ``waiting`` (due deliveries per destination), none past ``per_destination`` in
    flight (``busy``)."""
    room = {d: min(n, per_destination - busy.get(d, 0)) for d, n in waiting.items()}
    room = {d: n for d, n in room.items() if n > 0}
    quota: Counter[str] = Counter()
    while free > 0 and room:
        for dest in list(room):
            if free == 0:
                break
            quota[dest] += 1
            free -= 1
            room[dest] -= 1
            if room[dest] == 0:
                del room[dest]
    return dict(quota)


Payload = Callable[[Session, Generation], dict[str, Any]]
"""What a delivery's receiver is sent, built in the claim's transaction."""


def claim(ctx: WorkerContext, payload: Payload) -> list[Due]:
    """Lease the deliveries that may start now (see the module docstring), each with the
    ``payload`` its receiver is sent. A completed job whose files are being copied waits for
    the copy (up to ``media_wait`` after completion), so its payload carries genqueue's URLs
    (when this worker can make them: ``ctx.media_urls``; else it has no reason to wait)."""
    now = ctx.clock()
    limits = ctx.limits
    due = _due(now, limits.media_wait if ctx.media_urls is not None else 0.0)
    lease_until = now + timedelta(seconds=3 * limits.webhook_timeout + 10)
    with ctx.sessions.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK})
        _label_destinations(session, now, due)
        busy = _in_flight(session, now)
        free = limits.webhook_concurrency - sum(busy.values())
        if free <= 0:
            return []
        quota = share(_waiting(session, due), busy, free, limits.webhook_per_destination)
        rows: list[Generation] = []
        for dest, count in quota.items():
            rows += session.scalars(
                select(Generation)
                .where(due, Generation.webhook_destination == dest)
                .order_by(Generation.completed_at)
                .limit(count)
            ).all()
        if rows:
            session.execute(
                update(Generation)
                .where(Generation.id.in_([g.id for g in rows]))
                .values(webhook_lease_until=lease_until)
                .execution_options(synchronize_session=False)
            )
        return [
            Due(
                g.id,
                g.tenant_id,
                g.webhook_url or "",
                g.webhook_attempts,
                lease_until,
                payload(session, g),
            )
            for g in rows
        ]


def _due(now: datetime, media_wait: float) -> ColumnElement[bool]:
    g = Generation
    return and_(
        copy_not_awaited(now, media_wait),
        g.status.in_([s.value for s in TERMINAL]),
        g.webhook_url.is_not(None),
        g.webhook_delivered_at.is_(None),
        g.webhook_stopped_at.is_(None),
        or_(g.webhook_next_at.is_(None), g.webhook_next_at <= now),
        or_(g.webhook_lease_until.is_(None), g.webhook_lease_until <= now),
    )


def _label_destinations(session: Session, now: datetime, due: ColumnElement[bool]) -> None:
    rows = session.execute(
        select(Generation.id, Generation.webhook_url)
        .where(due, Generation.webhook_destination.is_(None))
        .limit(LABEL_BATCH)
    ).all()
    if rows:
        session.execute(
            update(GENERATIONS)
            .where(GENERATIONS.c.id == bindparam("row_id"))
            .values(webhook_destination=bindparam("dest")),
            [{"row_id": i, "dest": destination_of(url or "")} for i, url in rows],
        )


def _in_flight(session: Session, now: datetime) -> dict[str, int]:
    rows = session.execute(
        select(Generation.webhook_destination, func.count())
        .where(Generation.webhook_lease_until > now)
        .group_by(Generation.webhook_destination)
    ).all()
    return {str(dest): int(n) for dest, n in rows}


def _waiting(session: Session, due: ColumnElement[bool]) -> dict[str, int]:
    """Due deliveries per destination, the destination waiting longest first."""
    rows = session.execute(
        select(Generation.webhook_destination, func.count(), func.min(Generation.completed_at))
        .where(due, Generation.webhook_destination.is_not(None))
        .group_by(Generation.webhook_destination)
        .order_by(func.min(Generation.completed_at))
    ).all()
    return {str(dest): int(n) for dest, n, _ in rows}
