"""The copies of a completed generation's output files: which files, and their state.

A result that references files (any JSON object with an http(s) ``url``, at any depth:
``models/files.py``) marks its generation's ``media_status`` ``pending`` when it is recorded.
The media tick then lists the files (:func:`expand_pending`: one ``media_files`` row each, in
document order), leases the due ones (:func:`claim_due`), and writes each copy's outcome
(``models/media_outcomes.py``) with the lease as guard, so a copy whose lease ran out and was taken
again loses harmlessly. When no file of a generation is pending any more, its ``media_status``
becomes ``stored`` (every file copied) or ``failed`` (one or more could not be).
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    Update,
    and_,
    bindparam,
    exists,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from models.files import file_objects
from models.json_rows import encode, json_rows
from models.tables import GENERATIONS, MEDIA_FILES


class MediaStatus(StrEnum):
    PENDING = "pending"
    """Files wait to be copied (the generation's, or one file's)."""
    STORED = "stored"
    """Copied: every file (the generation's), or this one."""
    FAILED = "failed"
    """At least one file could not be copied; its ``error`` says why (upstream URL kept)."""


def object_key(generation_id: uuid.UUID, position: int) -> str:
    """Where a file's copy lives in the store: the same name however often it is copied."""
    return f"{generation_id}/{position}"


def file_urls(result: Any) -> Iterator[tuple[str, str]]:
    """``(JSON pointer, url)`` of every file object in ``result`` with an http(s) ``url``, at
    any depth (:func:`models.files.file_objects`), in document order: a file's position."""
    for found in file_objects(result):
        if found.downloadable:
            yield found.pointer, found.url


def media_status_for(result: Any) -> str | None:
    """What a freshly recorded result's ``media_status`` is: pending when it has files."""
    return MediaStatus.PENDING.value if next(file_urls(result), None) else None


def awaits_copy(
    media_status: str | None, completed_at: datetime | None, now: datetime, wait: float
) -> bool:
    """Whether an answer that hands out the result (a sync ``/run``, a client webhook) should
    wait for the copy of its files, so it carries genqueue's URLs: the copy is pending and
    completion was less than ``wait`` seconds ago."""
    if media_status != MediaStatus.PENDING.value or completed_at is None:
        return False
    return now < completed_at + timedelta(seconds=wait)


def copy_not_awaited(now: datetime, wait: float) -> ColumnElement[bool]:
    """:func:`awaits_copy`, negated, as a condition on ``generations`` (due webhooks)."""
    g = GENERATIONS.c
    return or_(
        g.media_status.is_(None),
        g.media_status != MediaStatus.PENDING.value,
        g.completed_at <= now - timedelta(seconds=wait),
    )


@dataclass(frozen=True)
class DueFile:
    id: int
    generation_id: uuid.UUID
    position: int
    upstream_url: str
    attempts: int
    completed_at: datetime
    lease_until: datetime

    @property
    def key(self) -> str:
        return object_key(self.generation_id, self.position)


def expand_pending(session: Session, now: datetime, *, limit: int, wait: float) -> int:
    """Give up to ``limit`` generations pending their copy one file row per file, due now,
    and mark them listed (``media_listed_at``); how many generations. Those somebody waits for
    (:func:`awaited`) go first, then the longest completed; their files are awaited until
    ``wait`` seconds after completion. It reads only the results not listed yet (a partial
    index holds them), never through a backlog being copied."""
    g, f = GENERATIONS.c, MEDIA_FILES.c
    waited_for = awaited()
    rows = session.execute(
        select(g.id, g.result, g.completed_at, waited_for)
        .where(
            g.media_status == MediaStatus.PENDING.value,
            g.media_listed_at.is_(None),
            # and none listed by a worker of the version before, which set no mark
            ~exists().where(f.generation_id == g.id),
        )
        .order_by(waited_for.desc(), g.completed_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=GENERATIONS)
    ).all()
    files = [
        {
            "generation_id": gen_id,
            "position": position,
            "pointer": pointer[:300],
            "upstream_url": url,
            "status": MediaStatus.PENDING.value,
            "attempts": 0,
            "next_at": now,
            "awaited_until": _awaited_until(completed_at, wait) if waited else None,
            "created_at": now,
        }
        for gen_id, result, completed_at, waited in rows
        for position, (pointer, url) in enumerate(file_urls(result))
    ]
    if files and session.get_bind().dialect.name == "postgresql":
        session.execute(_LIST_FILES, {"rows": encode(files)})
    elif files:
        session.execute(insert(MEDIA_FILES), files)
    listed = {gen_id for gen_id, *_ in rows}
    if listed:
        session.execute(update(GENERATIONS).where(g.id.in_(listed)).values(media_listed_at=now))
    empty = listed - {row["generation_id"] for row in files}
    if empty:  # the result changed since it was marked: nothing to copy
        session.execute(update(GENERATIONS).where(g.id.in_(empty)).values(media_status=None))
    return len(rows)


def awaited() -> ColumnElement[bool]:
    """A generation whose answer somebody waits for, copied files included: a sync ``/run`` or
    a ``/v1`` create with ``await_media`` (``copy_awaited``), or a client webhook (its delivery
    waits: :func:`copy_not_awaited`)."""
    g = GENERATIONS.c
    return or_(g.copy_awaited, g.webhook_url.is_not(None)).label("awaited")


def _awaited_until(completed_at: datetime | None, wait: float) -> datetime | None:
    """When the wait for a copy ends: ``wait`` seconds after completion (none without)."""
    return None if completed_at is None else completed_at + timedelta(seconds=wait)


LISTED = (
    "generation_id",
    "position",
    "pointer",
    "upstream_url",
    "status",
    "attempts",
    "next_at",
    "awaited_until",
)
_LISTED_AS = json_rows("listed", (MEDIA_FILES.c[name] for name in (*LISTED, "created_at")))
_LIST_FILES = insert(MEDIA_FILES).from_select([*LISTED, "created_at"], select(_LISTED_AS))
"""The files :func:`expand_pending` lists, in one statement (``models/json_rows.py``)."""


def waiting_for_copy(now: Any) -> ColumnElement[bool]:
    """A file due for a copy that no copy holds: pending, due at ``now``, with no lease in
    force. What a lease takes, and what the worker's media backlog gauges count."""
    f = MEDIA_FILES.c
    return and_(
        f.status == MediaStatus.PENDING.value,
        f.next_at <= now,
        or_(f.lease_until.is_(None), f.lease_until <= now),
    )


def _claim_statement() -> Update:
    """The lease (see :func:`claim_due`), built once: its parameters are bound per call. Up to
    ``limit`` awaited files and up to ``limit`` others are locked, the longest waiting of each
    first; the lease takes the awaited ones, then others up to the limit (the others it locked
    are let go when the statement ends). A CTE is run once: each LIMIT and its locks hold as
    written, and the planner sees at most ``limit`` rows to update."""
    f, g = MEDIA_FILES.c, GENERATIONS.c
    now = bindparam("now", type_=DateTime(timezone=True))
    limit = bindparam("limit", type_=Integer())

    def due(*where: ColumnElement[bool]) -> Select[tuple[int, datetime | None]]:
        return (
            select(f.id, f.next_at)
            .where(waiting_for_copy(now), *where)
            .order_by(f.next_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )

    waited_for = due(f.awaited_until > now).cte("awaited")
    others = due(f.id.not_in(select(waited_for.c.id))).cte("others")
    candidates = union_all(
        select(waited_for.c.id, waited_for.c.next_at, literal(0).label("rank")),
        select(others.c.id, others.c.next_at, literal(1).label("rank")),
    ).subquery("candidates")
    chosen = (
        select(candidates.c.id)
        .order_by(candidates.c.rank, candidates.c.next_at)
        .limit(limit)
        .cte("chosen")
    )
    completed_at = select(g.completed_at).where(g.id == f.generation_id).scalar_subquery()
    return (
        update(MEDIA_FILES)
        .where(f.id.in_(select(chosen.c.id)))
        .values(lease_until=bindparam("lease_to", type_=DateTime(timezone=True)))
        .returning(f.id, f.generation_id, f.position, f.upstream_url, f.attempts, completed_at)
    )


_CLAIM = _claim_statement()


def claim_due(
    session: Session, now: datetime, *, limit: int, lease_until: datetime
) -> list[DueFile]:
    """Lease up to ``limit`` files due for a copy, those somebody waits for first, then the
    longest waiting: one statement (the lease taken on the rows it locked, skipping those
    another claim holds)."""
    params = {"now": now, "limit": limit, "lease_to": lease_until}
    rows = session.execute(_CLAIM, params).all()
    return [
        DueFile(id_, gen_id, position, url, attempts, done or now, lease_until)
        for id_, gen_id, position, url, attempts, done in sorted(rows, key=itemgetter(0))
    ]


@dataclass(frozen=True)
class Outcome:
    """How one copy attempt ended: stored (with its facts), to be retried at ``retry_at``,
    or failed for good (``reason``)."""

    status: MediaStatus
    sha256: str | None = None
    size: int | None = None
    content_type: str | None = None
    reason: str | None = None
    retry_at: datetime | None = None
    detail: dict[str, Any] | None = None
