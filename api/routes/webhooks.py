"""``POST /webhooks/fal``: fal's signed webhooks (``GENQUEUE_UPSTREAM_WEBHOOK_URL``).

No API key: the ED25519 signature is the credential (``api/fal/webhook.py``). A webhook that is
not proven to be fal's gets 401, an unreadable one 400, and neither changes anything; when the
keys cannot be fetched the answer is 503, so fal tries again (polling carries on meanwhile). A
verified one settles its job as a poll would (``models/upstream_webhook.py``), written in one
transaction with the other webhooks waiting (``api/fal/settler.py``), and gets 200, also when
it changed nothing (a duplicate, a job already ended, an unknown request id); one that cannot
be recorded gets a 5xx, so fal tries again. A body larger than ``GENQUEUE_MAX_BODY_BYTES`` gets
413 before anything is checked, as on the JSON routes. Every webhook is counted by outcome
(``genqueue_upstream_webhooks_total``).

fal's webhooks come in bursts, and the p99 from a webhook's arrival to its job's end is bounded
(issue 11: 0.5 s): on a loaded machine that lag is the queue in front of the API's event loop,
so each webhook's CPU counts. :class:`WebhookShortcut` answers ``POST /webhooks/fal`` before
FastAPI's routing, dependency solving and inner middleware (about a third of the event loop's
time per webhook, by the profile in benchmarks/RESULTS.md, B4), calling the same endpoint and
the app's own exception handlers; the route below stays the documented one (and answers if the
shortcut is not installed).
"""

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.body import read_body
from api.errors import ApiError
from api.fal.jwks import CachedKeys, KeysNotCached
from api.fal.webhook import Keys, WebhookRefused, parse, verify
from api.openapi import errors
from api.state import AppState, StateDep
from models.upstream_webhook import FalWebhook, WebhookOutcome

router = APIRouter(tags=["upstream webhooks"])
PATH = "/webhooks/fal"
log = logging.getLogger(__name__)


class WebhookAnswer(BaseModel):
    outcome: str
    """What the webhook did (``WebhookOutcome``)."""


@router.post(
    PATH,
    response_model=WebhookAnswer,
    summary="fal's signed webhook (the signature is the credential, no API key)",
    responses=errors(400, 401, 413, 503),
)
async def fal_webhook(request: Request, state: StateDep) -> JSONResponse:
    limit = state.settings.max_body_bytes
    try:  # fal's webhooks are small; a larger body costs the other requests, so it is refused
        body = await read_body(request, limit)
    except ApiError:
        state.count_webhook("refused_too_large")
        log.warning("fal webhook refused (413): body larger than %d bytes", limit)
        raise
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


Handler = Callable[[Request, Any], Response | Awaitable[Response]]


class WebhookShortcut:
    """ASGI middleware (inside the metrics middleware, which still counts and times each
    request under the route's template): ``POST /webhooks/fal`` goes straight to
    :func:`fal_webhook`; an error it raises is answered by the app's handler for it (401/400
    for a refused webhook, 503 when the database is unreachable), anything unhandled is left to
    the outer ``ServerErrorMiddleware`` (500), as for every route. Anything else passes on."""

    def __init__(self, app: ASGIApp, *, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi
        self.route: BaseRoute = next(r for r in router.routes if getattr(r, "path", None) == PATH)
        """What the metrics middleware labels the request with (the router would set it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        request = Request(scope, receive)
        response: Response
        try:
            response = await fal_webhook(request, self.fastapi.state.genqueue)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        """The app's handler for ``exc``'s class (the catch-all ``Exception`` one is the outer
        ``ServerErrorMiddleware``'s)."""
        handlers = self.fastapi.exception_handlers
        for kind in type(exc).__mro__:
            if kind is Exception:
                return None
            if kind in handlers:
                return handlers[kind]
        return None


def install(app: FastAPI) -> None:
    """The route, and its shortcut (call before ``install_metrics``: the metrics middleware
    must be outside it)."""
    app.include_router(router)
    app.add_middleware(WebhookShortcut, fastapi=app)
