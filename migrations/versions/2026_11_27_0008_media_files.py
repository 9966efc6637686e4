"""media files

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 11:00:00.000000

A completed generation's output files are copied into genqueue's own store: one
``media_files`` row per file (its copy's state, SHA-256, size, content type), and the
generation's ``media_status`` (pending, stored, failed).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.types import BigIntPK, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("media_status", sa.String(length=16), nullable=True))
        batch_op.create_index("ix_generations_media_status", ["media_status"], unique=False)
    op.create_table(
        "media_files",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("generation_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("pointer", sa.String(length=300), nullable=False),
        sa.Column("upstream_url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("stored_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_media_files_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_files")),
        sa.UniqueConstraint("generation_id", "position", name="uq_media_files_position"),
    )
    with op.batch_alter_table("media_files", schema=None) as batch_op:
        batch_op.create_index("ix_media_files_due", ["status", "next_at"], unique=False)
        batch_op.create_index("ix_media_files_generation_id", ["generation_id"], unique=False)


def downgrade() -> None:
    op.drop_table("media_files")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_media_status")
        batch_op.drop_column("media_status")
