"""The caller's client webhooks: its signing secret (``/v1/webhook-secret``), shown only to it."""

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.openapi import SECURITY, errors
from api.state import CallerDep, SessionDep, StateDep
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
