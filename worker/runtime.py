"""The per-process worker context: built on first use after fork, from the settings."""

import functools
import os
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from celery import Celery

from models.catalogue import load_catalogue
from models.db import make_engine, make_session_factory
from models.dbclock import DatabaseClock
from models.destinations import AddressPolicy
from models.media_store import open_store
from models.media_urls import configured_urls
from models.secretbox import secret_box
from models.settings import Settings
from worker import metrics
from worker.backoff import BackoffPolicy
from worker.context import Limits, Observer, WorkerContext
from worker.lifecycle.media import media_http
from worker.lifecycle.webhook_http import WebhookHttp
from worker.upstream import UpstreamClient

_lock = threading.Lock()
_state: dict[str, Any] = {}


class MetricsObserver(Observer):
    """Reports lifecycle events to the worker's Prometheus series (worker/metrics.py)."""

    def submit_outcome(self, outcome: str) -> None:
        metrics.record_submit_outcome(outcome)

    def retry(self, operation: str) -> None:
        metrics.record_retry(operation)

    def terminal(self, status: str, created_at: datetime, now: datetime) -> None:
        metrics.record_terminal(status, (now - created_at).total_seconds())


def build_context(settings: Settings, app: Celery) -> WorkerContext:
    engine = make_engine(settings.database_url)
    client = UpstreamClient(
        base_url=settings.upstream_url,
        key=settings.upstream_key,
        auth_scheme=settings.upstream_auth_scheme,
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_connections=settings.upstream_max_connections,
        observer=metrics.record_upstream_call,
    )

    def publish(task_name: str, args: Sequence[Any]) -> None:
        app.send_task(task_name, args=list(args))

    webhook_http = WebhookHttp(
        AddressPolicy.from_settings(settings),
        timeout=settings.webhook_timeout,
        max_connections=settings.webhook_concurrency,
    )
    store = open_store(
        settings.media_store, endpoint=settings.media_s3_endpoint, region=settings.media_s3_region
    )
    return WorkerContext(
        sessions=make_session_factory(engine),
        client=client,
        publish=publish,
        policy=BackoffPolicy.from_settings(settings),
        limits=Limits.from_settings(settings),
        clock=DatabaseClock(engine),  # leases are compared across hosts: the DB's time
        observer=MetricsObserver(),
        secret_box=functools.cache(lambda: secret_box(settings)),
        send_webhook=webhook_http.send,
        media_store=store,
        media_http=media_http(
            settings.media_timeout,
            settings.media_concurrency,
            AddressPolicy(allow_private=settings.media_allow_private),
        ),
        media_urls=configured_urls(settings, store),
        expected_run_seconds=load_catalogue(settings.models_file).expected_run_seconds,
    )


def get_context(settings: Settings, app: Celery) -> WorkerContext:
    """One context per process; a forked child builds its own (engines and sockets don't fork)."""
    pid = os.getpid()
    with _lock:
        if _state.get("pid") != pid:
            _state["pid"] = pid
            _state["ctx"] = build_context(settings, app)
        ctx: WorkerContext = _state["ctx"]
        return ctx
