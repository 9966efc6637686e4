"""queue position runs and retention

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:00:00.000000

The worker now keeps a run of queue positions (changes with no other event between them) in
one ``queue_position`` event whose ``detail.positions`` lists ``[at, position]`` pairs
(models/history.py). This migration collapses the rows written one per position before, at
most 100 pairs a row, keeping each position and its time; and indexes ``completed_at`` for the
retention sweep. Downgrading drops the index only: the collapsed rows stay readable.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from models.types import JSONType, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_LIMIT = 100
CHUNK = 500
"""Generations whose events are rewritten per statement round."""
EVENTS = sa.table(
    "generation_events",
    sa.column("id", sa.BigInteger()),
    sa.column("generation_id", sa.Uuid()),
    sa.column("at", UTCDateTime()),
    sa.column("kind", sa.String()),
    sa.column("queue_position", sa.Integer()),
    sa.column("detail", JSONType),
)


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index("ix_generations_completed_at", ["completed_at"], unique=False)
    _collapse_position_runs()


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_completed_at")


def _collapse_position_runs() -> None:
    bind = op.get_bind()
    e = EVENTS.c
    generation_ids = (
        bind.execute(
            sa.select(e.generation_id)
            .where(e.kind == "queue_position")
            .group_by(e.generation_id)
            .having(sa.func.count() > 1)
        )
        .scalars()
        .all()
    )
    for start in range(0, len(generation_ids), CHUNK):
        rows = bind.execute(
            sa.select(e.id, e.generation_id, e.kind, e.at, e.queue_position)
            .where(e.generation_id.in_(generation_ids[start : start + CHUNK]))
            .order_by(e.generation_id, e.id)
        ).all()
        kept, gone = [], []
        for run in _runs(rows):
            for first in range(0, len(run), RUN_LIMIT):
                part = run[first : first + RUN_LIMIT]
                if len(part) > 1:
                    pairs = [[row.at.isoformat(), row.queue_position] for row in part]
                    kept.append({"row_id": part[-1].id, "runs": {"positions": pairs}})
                    gone.extend(row.id for row in part[:-1])
        if kept:
            bind.execute(
                sa.update(EVENTS)
                .where(e.id == sa.bindparam("row_id"))
                .values(detail=sa.bindparam("runs", type_=JSONType)),
                kept,
            )
        for first in range(0, len(gone), CHUNK):
            bind.execute(sa.delete(EVENTS).where(e.id.in_(gone[first : first + CHUNK])))


def _runs(rows: Sequence[Any]) -> Iterator[list[Any]]:
    """Each generation's runs of consecutive ``queue_position`` events (rows in id order)."""
    run: list[Any] = []
    for row in rows:
        if run and run[-1].generation_id != row.generation_id:
            yield run
            run = []
        if row.kind == "queue_position" and row.queue_position is not None:
            run.append(row)
        elif run:
            yield run
            run = []
    if run:
        yield run
