"""Listing a tenant's generations: filters and keyset (cursor) pagination, newest first."""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, String, literal_column, or_, select
from sqlalchemy.orm import Session

from api.errors import invalid
from models.status import GenerationStatus
from models.tables import Generation


@dataclass(frozen=True)
class Filters:
    statuses: Sequence[GenerationStatus] = ()
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    ids: tuple[uuid.UUID, uuid.UUID] | None = None
    """The ids from, to (both included): what an id prefix stands for."""
    prompt: str | None = None
    """Text the prompt contains, case-insensitive."""


MAX_SEARCH_LENGTH = 200


ID_PREFIX_PATTERN = r"^-*(?:[0-9A-Fa-f]-*){1,32}$"
"""What :func:`prefix_ids` accepts, for the OpenAPI document."""


def prefix_ids(prefix: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The smallest and the largest id that begin with ``prefix`` (hex digits, dashes
    ignored): a range both PostgreSQL's uuid and SQLite's hex text order the same way."""
    digits = prefix.replace("-", "").lower()
    if not 1 <= len(digits) <= 32 or any(c not in "0123456789abcdef" for c in digits):
        raise invalid(
            ["query", "id_prefix"],
            "An id prefix is 1 to 32 hexadecimal digits (dashes allowed)",
            type="value_error",
            input=prefix,
        )
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


CURSOR_PATTERN = r"^[0-9]{1,17}_[0-9a-f]{32}$"
"""A cursor: the last row's creation time in microseconds since the epoch, ``_``, its id in hex.
Plain text of a fixed shape: no parser that could recurse, nothing longer than 50 characters."""
_CURSOR = re.compile(CURSOR_PATTERN.replace("$", r"\Z"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(gen: Generation) -> str:
    micros = (as_utc(gen.created_at) - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{gen.id.hex}"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a cursor stands for; 422 naming ``cursor`` if it is not one."""
    if _CURSOR.match(cursor) is None:
        raise invalid(
            ["query", "cursor"],
            "Invalid cursor: pass the next_cursor of a previous page",
            type="value_error",
            input=cursor[:100],
        )
    micros, _, hex_id = cursor.partition("_")
    return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(hex_id)


def prompt_contains(text: str) -> ColumnElement[bool]:
    """The input's prompt contains ``text`` (``%`` and ``_`` taken literally)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # ``input ->> 'prompt'`` with the key written out, as PostgreSQL's trigram index on the
    # prompt is (migration 0009); SQLite reads the same operator.
    prompt: ColumnElement[str] = Generation.input.op("->>", return_type=String)(
        literal_column("'prompt'")
    )
    return prompt.ilike(f"%{escaped}%", escape="\\")


def list_page(
    session: Session,
    tenant_id: uuid.UUID,
    filters: Filters,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Generation], str | None]:
    stmt = select(Generation).where(Generation.tenant_id == tenant_id)
    if filters.statuses:
        stmt = stmt.where(Generation.status.in_([s.value for s in filters.statuses]))
    if filters.model:
        stmt = stmt.where(Generation.model == filters.model)
    if filters.created_after:
        stmt = stmt.where(Generation.created_at >= as_utc(filters.created_after))
    if filters.created_before:
        stmt = stmt.where(Generation.created_at < as_utc(filters.created_before))
    if filters.ids:
        stmt = stmt.where(Generation.id.between(*filters.ids))
    if filters.prompt:
        stmt = stmt.where(prompt_contains(filters.prompt))
    if cursor:
        at, gid = decode_cursor(cursor)
        # The first bound alone is a range of the (tenant_id, created_at) index; the OR only
        # filters the rows of the one instant the cursor stands in (benchmarks/RESULTS.md C1).
        stmt = stmt.where(
            Generation.created_at <= at,
            or_(Generation.created_at < at, Generation.id < gid),
        )
    stmt = stmt.order_by(Generation.created_at.desc(), Generation.id.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more and rows else None
