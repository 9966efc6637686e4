"""The caller's client webhooks: its signing secret (``/v1/webhook-secret``), shown only to it;
a generation's delivery log and redelivery (``/v1/generations/{id}/deliveries``)."""

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.errors import ApiError, not_found
from api.lookups import owned_generation
from api.openapi import SECURITY, errors
from api.schemas import Timestamp
from api.state import CallerDep, SessionDep, StateDep
from models.deliveries import Redelivery, attempts_of, schedule_redelivery
from models.webhook_secrets import current_secret, rotate

router = APIRouter(prefix="/v1", tags=["webhooks"])
AUTH = {"security": SECURITY}


class WebhookSecret(BaseModel):
    secret: str = Field(
        description="Standard Webhooks secret (`whsec_…`) that verifies this tenant's webhooks",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


@router.get(
    "/webhook-secret",
    response_model=WebhookSecret,
    summary="The secret your webhooks are signed with",
    description="Verify each delivery's `webhook-signature` with it (Standard Webhooks).",
    responses=errors(401, 503),
    openapi_extra=AUTH,
)
def get_webhook_secret(caller: CallerDep, session: SessionDep, state: StateDep) -> WebhookSecret:
    secret = current_secret(session, state.secret_box, caller.tenant_id)
    session.commit()  # a tenant older than secrets gets its first one now
    session.close()
    return WebhookSecret(secret=secret)


@router.post(
    "/webhook-secret/rotate",
    response_model=WebhookSecret,
    summary="Replace the webhook secret",
    description="Answers the new secret. For 24 h every delivery carries signatures by both "
    "the new and the previous secret, so a receiver can switch without missing one.",
    responses=errors(401, 503),
    openapi_extra=AUTH,
)
def rotate_webhook_secret(caller: CallerDep, session: SessionDep, state: StateDep) -> WebhookSecret:
    secret = rotate(session, state.secret_box, caller.tenant_id, now=state.clock())
    session.commit()
    session.close()
    return WebhookSecret(secret=secret)


class DeliveryAttempt(BaseModel):
    at: Timestamp = Field(description="when the attempt started")
    attempt: int = Field(description="1 for a delivery's first attempt (a redelivery restarts)")
    url: str
    outcome: Literal["delivered", "failed", "abandoned", "blocked", "gone"]
    http_status: int | None = Field(description="the receiver's answer, if it answered")
    error: str | None = Field(
        description="why it failed: `HTTP <status>`, or a class (timeout, connect error, "
        "protocol error, blocked) when no answer came"
    )
    duration_ms: int
    response_excerpt: str | None = Field(description="the first KiB of the receiver's answer")


class DeliveryLog(BaseModel):
    webhook_url: str | None
    delivered_at: Timestamp | None
    stopped_at: Timestamp | None = Field(description="no more attempts will be made (not 2xx)")
    next_attempt_at: Timestamp | None
    attempts: list[DeliveryAttempt]


class RedeliverAnswer(BaseModel):
    outcome: Literal["scheduled"]
    deliveries_url: str


@router.get(
    "/generations/{generation_id}/deliveries",
    response_model=DeliveryLog,
    summary="The generation's webhook delivery attempts",
    responses=errors(401, 404, 503),
    openapi_extra=AUTH,
)
def list_deliveries(caller: CallerDep, session: SessionDep, generation_id: str) -> DeliveryLog:
    gen = owned_generation(session, caller.tenant_id, generation_id)
    if gen is None:
        raise not_found()
    due = gen.webhook_url is not None and not (gen.webhook_delivered_at or gen.webhook_stopped_at)
    log = DeliveryLog(
        webhook_url=gen.webhook_url,
        delivered_at=gen.webhook_delivered_at,
        stopped_at=gen.webhook_stopped_at,
        next_attempt_at=gen.webhook_next_at if due else None,
        attempts=[
            DeliveryAttempt.model_validate(row, from_attributes=True)
            for row in attempts_of(session, gen.id)
        ],
    )
    session.close()
    return log


REFUSALS = {
    Redelivery.NOT_ENDED: "Generation has not ended: its webhook is sent when it does",
    Redelivery.NO_WEBHOOK: "Generation has no webhook_url",
    Redelivery.IN_FLIGHT: "A delivery attempt is in progress; try again once it is recorded",
}


@router.post(
    "/generations/{generation_id}/deliveries/redeliver",
    response_model=RedeliverAnswer,
    status_code=202,
    summary="Send the generation's final webhook again",
    description="The same payload and `webhook-id`, signed anew, as a fresh delivery (retried "
    "on failure like the first); each attempt appears in the delivery log.",
    responses=errors(401, 404, 409, 503),
    openapi_extra=AUTH,
)
def redeliver(
    caller: CallerDep, session: SessionDep, state: StateDep, generation_id: str
) -> RedeliverAnswer:
    gen = owned_generation(session, caller.tenant_id, generation_id)
    if gen is None:
        raise not_found()
    outcome = schedule_redelivery(session, gen.id, now=state.clock())
    if outcome is not Redelivery.SCHEDULED:
        session.rollback()
        raise ApiError(409, REFUSALS[outcome])
    session.commit()
    session.close()
    return RedeliverAnswer(
        outcome="scheduled", deliveries_url=f"/v1/generations/{gen.id}/deliveries"
    )
