"""Database rows → the native surface's records."""

from collections.abc import Sequence

from api.schemas import GenerationDetail, GenerationEventPublic, GenerationPublic
from models.status import GenerationStatus
from models.tables import Generation, GenerationEvent


def to_public(gen: Generation) -> GenerationPublic:
    return GenerationPublic(
        id=str(gen.id),
        model=gen.model,
        status=GenerationStatus(gen.status),
        input=gen.input,
        upstream_request_id=gen.upstream_request_id,
        queue_position=gen.queue_position,
        result=gen.result,
        error=gen.error,
        webhook_url=gen.webhook_url,
        idempotency_key=gen.idempotency_key,
        cancel_requested_at=gen.cancel_requested_at,
        created_at=gen.created_at,
        submitted_at=gen.submitted_at,
        started_at=gen.started_at,
        completed_at=gen.completed_at,
        deadline_at=gen.deadline_at,
        submit_attempts=gen.submit_attempts,
        poll_count=gen.poll_count,
    )


def to_detail(gen: Generation, events: Sequence[GenerationEvent]) -> GenerationDetail:
    return GenerationDetail(
        **to_public(gen).model_dump(),
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
