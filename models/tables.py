"""The tables: tenants and their API keys, generations, and the append-only event log."""

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from models.priority import Priority
from models.status import GenerationStatus
from models.types import BigIntPK, JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUS_VALUES = ", ".join(f"'{s.value}'" for s in GenerationStatus)
MEDIA_UNLISTED = "media_status = 'pending' AND media_listed_at IS NULL"
"""A result whose files the media tick has still to list (``models/media.py``)."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    webhook_secret: Mapped[str | None] = mapped_column(Text)
    """The ``whsec_`` secret client webhooks are signed with, encrypted (models/secretbox.py)."""
    webhook_secret_previous: Mapped[str | None] = mapped_column(Text)
    """The secret before the last rotation (encrypted): also signed with for 24 h after it."""
    webhook_secret_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Settings (``genqueue tenants set``), read live by the claim and the API.
    max_in_flight: Mapped[int | None] = mapped_column(Integer)
    """This tenant's jobs live upstream at once; None: only the global cap."""
    rate_limit: Mapped[float | None] = mapped_column(Float)
    """Creates per second (with ``burst``); None: unlimited."""
    burst: Mapped[int | None] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    """Share of the upstream slots under contention, relative to the other tenants'."""
    monthly_budget: Mapped[float | None] = mapped_column(Float)
    """USD a calendar month (UTC); None: no budget."""

    # The scheduler's clock (start-time fair queuing, worker/lifecycle/fair.py), in
    # expected run seconds divided by weight.
    fair_start: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    """Start tag of this tenant's last claimed job."""
    fair_finish: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    """Finish tag of this tenant's last claimed job: where its next job starts."""


class ApiKey(Base):
    """An API key. Only its SHA-256 is stored; ``prefix`` lets an operator tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant] = relationship()


class Generation(Base):
    """One generation request, from the API's insert to its terminal state."""

    __tablename__ = "generations"
    __table_args__ = (
        CheckConstraint(f"status IN ({STATUS_VALUES})", name="status_valid"),
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_generations_idempotency"),
        Index("ix_generations_due", "status", "next_poll_at"),
        Index("ix_generations_tenant_created", "tenant_id", "created_at"),
        Index("ix_generations_webhook_due", "webhook_delivered_at", "webhook_next_at"),
        Index("ix_generations_completed_at", "completed_at"),  # the retention sweep
        Index("ix_generations_webhook_in_flight", "webhook_lease_until"),
        Index(  # a tenant's pending rows in the order the claim takes them
            "ix_generations_pending_order",
            "tenant_id",
            "priority",
            "created_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(  # results whose files are still to be listed: new ones, however long the backlog
            "ix_generations_media_unlisted",
            "completed_at",
            postgresql_where=text(MEDIA_UNLISTED),
            sqlite_where=text(MEDIA_UNLISTED),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    model: Mapped[str] = mapped_column(String(200))
    input: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default=GenerationStatus.PENDING.value)
    priority: Mapped[int] = mapped_column(
        SmallInteger, default=Priority.NORMAL.rank, server_default="1"
    )
    """Orders a tenant's own pending rows: ``Priority.rank`` (0 high, 1 normal, 2 low)."""

    upstream_request_id: Mapped[str | None] = mapped_column(String(100), index=True)
    status_url: Mapped[str | None] = mapped_column(Text)
    response_url: Mapped[str | None] = mapped_column(Text)
    cancel_url: Mapped[str | None] = mapped_column(Text)
    queue_position: Mapped[int | None] = mapped_column(Integer)

    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    submit_attempts: Mapped[int] = mapped_column(Integer, default=0)
    poll_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    expects_webhook: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Submitted with ``?fal_webhook=``: fal pushes the outcome, polls are the safety net."""
    unit_price: Mapped[float | None] = mapped_column(Float)
    """USD a unit (an image) of its model, fixed at create (models/pricing.py)."""
    estimated_cost: Mapped[float | None] = mapped_column(Float)
    """USD: ``unit_price`` × the units its input asks for."""
    final_cost: Mapped[float | None] = mapped_column(Float)
    """USD, written when it ends: upstream's billable units × ``unit_price``, else the estimate
    (completed) or 0 (failed, cancelled); null when it never went upstream (not charged)."""
    billable_units: Mapped[float | None] = mapped_column(Float)
    """What upstream said it bills (``x-fal-billable-units``), when it said."""
    run_seconds: Mapped[float | None] = mapped_column(Float)
    """Estimated seconds from upstream accept to upstream finish (feeds poll scheduling)."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)

    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """A pending row tried before may be sent again from then (its retry delay). Unlike
    ``next_poll_at``, which the dispatcher moves a submit grace ahead as its safety net whenever
    it publishes a row, nothing but a submit's outcome writes it."""
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[str | None] = mapped_column(String(36))

    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    webhook_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_destination: Mapped[str | None] = mapped_column(String(300))
    """``scheme://host:port`` of ``webhook_url``, set when its delivery is first due: what the
    per-destination cap on deliveries in flight counts by."""
    webhook_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """A delivery attempt is in flight until then (a worker that dies mid-attempt costs this)."""
    webhook_stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """No more attempts although none got a 2xx: the destination is refused by the address
    policy, the receiver answered 410 Gone, or the retries ran out."""
    media_status: Mapped[str | None] = mapped_column(String(16), index=True)
    """The copy of the result's files into genqueue's store (models/media.py): ``pending``,
    then ``stored`` or ``failed``; None: nothing to copy (not completed, or no file URLs)."""
    copy_awaited: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """A sync ``/run`` waits for this generation's answer, copied files included, or a ``/v1``
    create asked so (``await_media``; a client webhook waits as well, by its ``webhook_url``):
    its files are copied before the backlog."""
    media_listed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """When the media tick listed the result's files as ``media_files`` rows (in the same
    transaction): the listing looks only through the pending results not listed yet."""

    events: Mapped[list["GenerationEvent"]] = relationship(
        back_populates="generation", order_by="GenerationEvent.id", passive_deletes=True
    )


class GenerationEvent(Base):
    """The history: every transition, and every queue_position upstream reported (a run of
    positions is one row, models/history.py). Rows only go with their generation (retention)."""

    __tablename__ = "generation_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str | None] = mapped_column(String(16))
    queue_position: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    generation: Mapped[Generation] = relationship(back_populates="events")


class WebhookDelivery(Base):
    """The delivery log: one row per attempt at a client webhook, for the tenant to read."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    """When the attempt started."""
    attempt: Mapped[int] = mapped_column(Integer)
    """1 for the first attempt of a delivery (a redelivery starts again at 1)."""
    url: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))
    """delivered, failed, abandoned, blocked or gone."""
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(300))
    duration_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    """The first KiB of the receiver's answer."""


class MediaFile(Base):
    """One output file of a completed generation, copied into genqueue's store.

    Its object key is ``{generation_id}/{position}``: the same file always lands under the same
    name, so a copy made twice (a worker killed after the write) replaces itself. A pending row
    is due at ``next_at``; a copy in flight holds it until ``lease_until``."""

    __tablename__ = "media_files"
    __table_args__ = (
        UniqueConstraint("generation_id", "position", name="uq_media_files_position"),
        Index("ix_media_files_due", "status", "next_at"),
        Index(  # the files awaited now: a few seconds' completions, however long the backlog
            "ix_media_files_awaited",
            "awaited_until",
            postgresql_where=text("status = 'pending' AND awaited_until IS NOT NULL"),
            sqlite_where=text("status = 'pending' AND awaited_until IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    generation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("generations.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    """Its place among the result's file URLs, in document order."""
    pointer: Mapped[str] = mapped_column(String(300))
    """Where its object sits in the result, as a JSON Pointer (``/images/0``)."""
    upstream_url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    awaited_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Somebody waits for this copy until then (a sync ``/run``, a client webhook: up to
    ``GENQUEUE_MEDIA_WAIT`` after completion): the lease takes it before the backlog."""
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


GENERATIONS = cast(Table, Generation.__table__)
"""The Core table, for statements over many rows that need no ORM objects."""
EVENTS = cast(Table, GenerationEvent.__table__)
MEDIA_FILES = cast(Table, MediaFile.__table__)
DELIVERIES = cast(Table, WebhookDelivery.__table__)
