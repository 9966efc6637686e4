"""Many rows as one parameter: a JSON array read by PostgreSQL's ``jsonb_to_recordset``.

A statement that writes a group of rows (the media tick's file listing and copy outcomes)
sends them as one JSON text instead of a parameter per value or a statement per row: the SQL
text is the same for any number of rows (a prepared statement), the encoding is one call to
the C JSON encoder, and psycopg dumps one string. The columns the rows are read as are named
with their types (``AS rows(id BIGINT, …)``), taken from the table the statement writes.
"""

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text, bindparam, cast, column, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine


def json_rows(
    name: str, columns: Iterable[Column[Any] | tuple[str, TypeEngine[Any]]], *, param: str = "rows"
) -> TableValuedAlias:
    """``jsonb_to_recordset(CAST(:param AS JSONB)) AS name(col TYPE, …)``; bind ``param`` to
    :func:`encode` of the rows. A column is a table's ``Column`` or ``(name, type)``."""
    typed = [
        column(c.name, c.type) if isinstance(c, Column) else column(c[0], c[1]) for c in columns
    ]
    rows = cast(bindparam(param, type_=Text()), JSONB())
    return func.jsonb_to_recordset(rows).table_valued(*typed).render_derived(name, with_types=True)


def encode(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as the JSON text :func:`json_rows` reads: times in ISO 8601 (PostgreSQL reads
    them back to the microsecond), UUIDs as text."""
    return json.dumps(rows, default=_json_value)


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")
