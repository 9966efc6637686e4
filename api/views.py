"""Database rows → the native surface's records."""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from api.schemas import GenerationDetail, GenerationEventPublic, GenerationPublic
from models.priority import Priority
from models.status import GenerationStatus
from models.tables import Generation, GenerationEvent
from models.vocabulary import EventKind


def _fields(get: Callable[[str], Any]) -> dict[str, Any]:
    """A generation's public fields, read through ``get`` (an ORM row's attributes, or a
    freshly inserted row's values)."""
    return {
        "id": str(get("id")),
        "model": get("model"),
        "status": GenerationStatus(get("status")),
        "priority": Priority.of_rank(get("priority")).value,
        "input": get("input"),
        "upstream_request_id": get("upstream_request_id"),
        "queue_position": get("queue_position"),
        "result": get("result"),
        "media_status": get("media_status"),
        "error": get("error"),
        "webhook_url": get("webhook_url"),
        "idempotency_key": get("idempotency_key"),
        "cancel_requested_at": get("cancel_requested_at"),
        "created_at": get("created_at"),
        "submitted_at": get("submitted_at"),
        "started_at": get("started_at"),
        "completed_at": get("completed_at"),
        "deadline_at": get("deadline_at"),
        "submit_attempts": get("submit_attempts"),
        "poll_count": get("poll_count"),
        "estimated_cost": get("estimated_cost"),
        "final_cost": get("final_cost"),
    }


def to_public(gen: Generation) -> GenerationPublic:
    return GenerationPublic(**_fields(partial(getattr, gen)))


def to_detail(
    gen: Generation, events: Sequence[GenerationEvent], *, local_queue_position: int | None = None
) -> GenerationDetail:
    return GenerationDetail(
        **_fields(partial(getattr, gen)),
        local_queue_position=local_queue_position,
        events=[
            GenerationEventPublic(
                at=e.at,
                kind=e.kind,
                status=GenerationStatus(e.status) if e.status else None,
                queue_position=e.queue_position,
                detail=e.detail,
            )
            for e in events
        ],
    )


def new_detail(
    row: Mapping[str, Any], at: datetime, *, local_queue_position: int | None = None
) -> GenerationDetail:
    """A generation just inserted (``row``: the values it was inserted with; every column not
    in it is NULL) and its one ``created`` event: built without loading or constructing ORM
    objects, a noticeable part of a create's CPU (benchmarks/HISTORY.md)."""
    return GenerationDetail(
        **_fields(row.get),
        local_queue_position=local_queue_position,
        events=[
            GenerationEventPublic(
                at=at,
                kind=EventKind.CREATED,
                status=GenerationStatus(row["status"]),
                queue_position=None,
                detail=None,
            )
        ],
    )
