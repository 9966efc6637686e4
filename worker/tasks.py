"""Thin Celery tasks: open the context, call one lifecycle function, return a small summary.

Arguments are ids only (and a lease token); no secret ever travels through the broker.
"""

import uuid
from typing import Any

from celery import Celery

from models import tasknames
from models.settings import Settings
from worker.context import WorkerContext
from worker.lifecycle import media, webhooks
from worker.lifecycle.cancel import cancel_generation
from worker.lifecycle.dispatch import dispatch_due
from worker.lifecycle.poll import poll_generations
from worker.lifecycle.reconcile import reconcile
from worker.lifecycle.submit_batch import submit_generations
from worker.runtime import get_context


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define genqueue's tasks on ``app``; each builds its process's context from ``settings``
    on first use (after the fork)."""

    def context() -> WorkerContext:
        return get_context(settings, app)

    @app.task(name=tasknames.SUBMIT_MANY)
    def submit_many(generation_ids: list[str]) -> dict[str, int]:
        return submit_generations(context(), [uuid.UUID(i) for i in generation_ids])

    @app.task(name=tasknames.POLL_BATCH)
    def poll_batch(generation_ids: list[str], batch_token: str) -> dict[str, int]:
        return poll_generations(context(), [uuid.UUID(i) for i in generation_ids], batch_token)

    @app.task(name=tasknames.CANCEL)
    def cancel(generation_id: str) -> str:
        return cancel_generation(context(), uuid.UUID(generation_id))

    # The ticks send no task events: Flower lists the generations' work (worker.housekeeping).
    @app.task(name=tasknames.DISPATCH, ignore_result=True, send_events=False)
    def dispatch() -> dict[str, Any]:
        return dispatch_due(context())

    @app.task(name=tasknames.WEBHOOKS, ignore_result=True, send_events=False)
    def deliver_webhooks() -> dict[str, Any]:
        ctx = context()
        return webhooks.deliver_webhooks(ctx, ctx.send_webhook) if ctx.send_webhook else {}

    @app.task(name=tasknames.MEDIA, ignore_result=True, send_events=False)
    def copy_media() -> dict[str, Any]:
        ctx = context()
        if ctx.media_store is None or ctx.media_http is None:
            return {}
        return media.media_tick(ctx, ctx.media_store, ctx.media_http)

    @app.task(name=tasknames.RECONCILE, ignore_result=True, send_events=False)
    def reconcile_rows() -> dict[str, Any]:
        return reconcile(context())
