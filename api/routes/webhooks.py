"""``POST /webhooks/fal``: fal's signed webhooks (``GENQUEUE_UPSTREAM_WEBHOOK_URL``).

No API key: the ED25519 signature is the credential (``api/fal/webhook.py``). A webhook that is
not proven to be fal's gets 401, an unreadable one 400, and neither changes anything; when the
keys cannot be fetched the answer is 503, so fal tries again (polling carries on meanwhile). A
verified one settles its job as a poll would (``models/upstream_webhook.py``), written in one
transaction with the other webhooks waiting (``api/fal/settler.py``), and gets 200, also when
it changed nothing (a duplicate, a job already ended, an unknown request id); one that cannot
be recorded gets a 5xx, so fal tries again. Every webhook is counted by outcome
(``genqueue_upstream_webhooks_total``).
"""

import logging
import time
from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.fal.jwks import CachedKeys, KeysNotCached
from api.fal.webhook import Keys, WebhookRefused, parse, verify
from api.openapi import errors
from api.state import AppState, StateDep
from models.upstream_webhook import FalWebhook, WebhookOutcome

router = APIRouter(tags=["upstream webhooks"])
log = logging.getLogger(__name__)


class WebhookAnswer(BaseModel):
    outcome: str
    """What the webhook did (``WebhookOutcome``)."""


@router.post(
    "/webhooks/fal",
    response_model=WebhookAnswer,
    summary="fal's signed webhook (the signature is the credential, no API key)",
    responses=errors(400, 401, 503),
)
async def fal_webhook(request: Request, state: StateDep) -> JSONResponse:
    body = await request.body()
    try:  # on the event loop while the keys are cached: the check is pure CPU, ~0.1 ms
        hook = verified(state, request.headers, body, CachedKeys(state.fal_keys))
    except KeysNotCached:
        hook = await run_in_threadpool(verified, state, request.headers, body, state.fal_keys)
    recorded = await state.webhooks.settle(hook)
    settled, now = recorded.settled, recorded.now
    outcome = settled.outcome
    state.count_webhook(outcome.value)
    if settled.ended and settled.created_at is not None:
        state.observe_terminal(outcome.value, (now - settled.created_at).total_seconds())
    if outcome is WebhookOutcome.UNKNOWN_REQUEST:
        log.info("fal webhook for unknown request %s ignored", hook.request_id)
    return JSONResponse({"outcome": outcome.value})


def verified(state: AppState, headers: Mapping[str, str], body: bytes, keys: Keys) -> FalWebhook:
    """The webhook, once its signature and body pass; refusals are counted and raised."""
    try:
        request_id = verify(headers, body, keys=keys, now=time.time())
        return parse(body, signed_request_id=request_id)
    except WebhookRefused as refused:
        state.count_webhook(f"refused_{refused.reason}")
        log.warning("fal webhook refused (%d): %s", refused.status_code, refused.detail)
        raise
