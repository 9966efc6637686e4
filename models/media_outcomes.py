"""How copy attempts end in the database: each file's outcome, its event, its generation's state.

:func:`record_outcomes` writes a group of outcomes (the media tick's writer gathers them), each
only while the file's lease is still the one its copy held, so a copy whose lease ran out and
was taken again loses harmlessly. On PostgreSQL the files and their events are one statement:
the group goes as one JSON parameter (``models/json_rows.py``), and the events are inserted
from the rows the update returned. When none of a generation's files is pending any more,
its ``media_status`` becomes ``stored`` or ``failed``.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Select,
    Update,
    bindparam,
    case,
    exists,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.orm import Session

from models.json_rows import encode, json_rows
from models.media import DueFile, MediaStatus, Outcome
from models.state import log_event
from models.tables import EVENTS, GENERATIONS, MEDIA_FILES
from models.vocabulary import EventKind

FILE_COLUMNS = (
    "attempts",
    "status",
    "sha256",
    "size",
    "content_type",
    "stored_at",
    "next_at",
    "error",
)
"""What one copy attempt writes to its file row."""
GUARD = ("id", "lease_until")
"""Which row, and the lease the copy held: the write happens only while it is still the row's."""
EVENT = ("kind", "detail")
"""The event of a file written (its generation comes from the file's row)."""
EVENT_OF = {
    MediaStatus.STORED: EventKind.MEDIA_STORED,
    MediaStatus.FAILED: EventKind.MEDIA_FAILED,
    MediaStatus.PENDING: EventKind.MEDIA_RETRY,
}
"""The event an attempt's outcome is recorded with (a ``StrEnum``: JSON and SQL take it as text)."""


def record_outcomes(
    session: Session, ended: Sequence[tuple[DueFile, Outcome]], now: datetime
) -> list[bool]:
    """Write the outcomes of copy attempts, each while its lease is still ours, and an event
    for each that was; settle each touched generation's ``media_status`` once none of its
    files is pending. Whether each won."""
    settling = sorted(
        {d.generation_id for d, o in ended if o.status is not MediaStatus.PENDING}, key=str
    )
    if settling:
        # Taken first, in one order: an event row's foreign key share-locks its generation,
        # and two writers each holding that while waiting for this lock would deadlock.
        session.execute(_LOCK_GENERATIONS, {"ids": settling})
    rows = [_row(due, outcome, now) for due, outcome in ended]
    if session.get_bind().dialect.name == "postgresql":
        params = {"rows": encode(rows), "at": now}
        written: set[int] = set(session.scalars(_RECORD, params).all())
    else:
        written = _record_one_by_one(session, rows, now)
    for (due, _), row in zip(ended, rows, strict=True):
        if due.id in written:
            log_event(due.generation_id, row["kind"], None, None, row["detail"])
    if settling:
        session.execute(_SETTLE, {"ids": settling})
    return [due.id in written for due, _ in ended]


def _row(due: DueFile, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """The guard, every column of :data:`FILE_COLUMNS` (a file not stored has no facts), the
    file's generation and its event."""
    stored = outcome.status is MediaStatus.STORED
    detail: dict[str, Any] = {"position": due.position, "attempt": due.attempts + 1}
    detail |= outcome.detail or {}
    if outcome.reason:
        detail["reason"] = outcome.reason
    retry_at = outcome.retry_at if outcome.status is MediaStatus.PENDING else None
    return {
        "id": due.id,
        "lease_until": due.lease_until,
        "attempts": due.attempts + 1,
        "status": outcome.status.value,
        "sha256": outcome.sha256 if stored else None,
        "size": outcome.size if stored else None,
        "content_type": outcome.content_type if stored else None,
        "stored_at": now if stored else None,
        "next_at": retry_at,
        "error": None if stored else outcome.reason,
        "generation_id": due.generation_id,
        "kind": EVENT_OF[outcome.status],
        "detail": detail,
    }


def _record_statement() -> Select[Any]:
    """``WITH written AS (UPDATE media_files … FROM jsonb_to_recordset(:rows) … RETURNING …),
    logged AS (INSERT INTO generation_events … SELECT … FROM written) SELECT id FROM written``:
    the ids whose lease was still ours, each with its event inserted."""
    f = MEDIA_FILES.c
    columns = [*(f[name] for name in GUARD + FILE_COLUMNS), *(EVENTS.c[name] for name in EVENT)]
    new = json_rows("new", columns)
    written = (
        update(MEDIA_FILES)
        .where(
            f.id == new.c.id,
            f.status == MediaStatus.PENDING.value,
            f.lease_until == new.c.lease_until,
        )
        .values({name: new.c[name] for name in FILE_COLUMNS})
        .values(lease_until=None)
        .returning(f.id, f.generation_id, new.c.kind, new.c.detail)
        .cte("written")
    )
    logged = insert(EVENTS).from_select(
        ["generation_id", "at", "kind", "status", "detail"],
        select(
            written.c.generation_id,
            bindparam("at", type_=DateTime(timezone=True)),
            written.c.kind,
            null(),
            written.c.detail,
        ),
    )
    return select(written.c.id).add_cte(logged.cte("logged"))


_RECORD = _record_statement()


def _record_one_by_one(session: Session, rows: Sequence[dict[str, Any]], now: datetime) -> set[int]:
    """SQLite (one writer at a time, no round trips to save): each file under its lease, then
    the events of those written."""
    f = MEDIA_FILES.c
    written: set[int] = set()
    for row in rows:
        count = session.execute(
            update(MEDIA_FILES)
            .where(
                f.id == row["id"],
                f.status == MediaStatus.PENDING.value,
                f.lease_until == row["lease_until"],
            )
            .values({name: row[name] for name in FILE_COLUMNS} | {"lease_until": None})
        ).rowcount  # type: ignore[attr-defined]
        if count == 1:
            written.add(row["id"])
    events = [
        {**{name: row[name] for name in ("generation_id", *EVENT)}, "at": now, "status": None}
        for row in rows
        if row["id"] in written
    ]
    if events:
        session.execute(insert(EVENTS), events)
    return written


def _settle_statement() -> Update:
    """Each generation's ``media_status`` from its files', once none is pending, in one
    statement (``ids`` bound per call); the caller holds the generations' row locks, which
    order their files' last writers: the second counts after the first committed, so one of
    them sees none pending."""
    f, g = MEDIA_FILES.c, GENERATIONS.c
    mine = f.generation_id == g.id
    failed = exists().where(mine, f.status == MediaStatus.FAILED.value)
    return (
        update(GENERATIONS)
        .where(
            g.id.in_(bindparam("ids", expanding=True)),
            g.media_status == MediaStatus.PENDING.value,
            ~exists().where(mine, f.status == MediaStatus.PENDING.value),
        )
        .values(
            media_status=case((failed, MediaStatus.FAILED.value), else_=MediaStatus.STORED.value)
        )
    )


_SETTLE = _settle_statement()
_LOCK_GENERATIONS = (
    select(GENERATIONS.c.id)
    .where(GENERATIONS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(GENERATIONS.c.id)
    .with_for_update()
)
