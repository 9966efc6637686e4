"""prompt search index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 11:10:00.000000

The console searches prompts (``GET /v1/generations?prompt=``, ``ILIKE '%…%'``). On
PostgreSQL a trigram index on the prompt (``pg_trgm``, a trusted extension since PostgreSQL 13)
turns that from a read of every row of the tenant into an index search. Built
``CONCURRENTLY`` (outside the migration's transaction), so writes go on while it is built.
SQLite has no such index: the search reads the rows there. The models do not declare it (an
index of one dialect with an operator class); ``migrations/env.py`` tells ``alembic check`` so.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_generations_prompt_trgm"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.get_context().autocommit_block():
        op.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON generations "
            "USING gin ((input ->> 'prompt') gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    with op.get_context().autocommit_block():
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")
