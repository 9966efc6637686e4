"""Prometheus ``/metrics``: requests by route template and code, latency, generations by status.

Label values are bounded (unknown methods are ``other``, unmatched paths ``unmatched``). With
``GENQUEUE_METRICS_TOKEN`` a scrape needs ``Authorization: Bearer <token>``; with
``GENQUEUE_METRICS_PORT`` only the internal listener ``api.main.serve`` opens answers it.

Each app has its own registry, so several apps in one process (tests) do not collide.
"""

import hmac
import os
import time
from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ApiError
from api.state import AppState
from models.status import GenerationStatus
from models.tables import Generation

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TERMINAL_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
"""The worker's buckets for the same series."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED = "unmatched"
"""Label values are bounded whatever clients send: a method outside :data:`METHODS` counts as
``other``, a path no route matched as ``unmatched`` (routes by template, never the raw path)."""


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER_METHOD


class GenerationsCollector(Collector):
    """Counts generations by status at scrape time (one grouped query)."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("genqueue_database_up", "1 if the database answered the scrape")
        try:
            with self.state.sessions() as session:
                rows = session.execute(
                    select(Generation.status, func.count()).group_by(Generation.status)
                ).all()
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        counts = {status: int(n) for status, n in rows}
        gauge = GaugeMetricFamily(
            "genqueue_generations", "Generations by status", labels=["status"]
        )
        for status in GenerationStatus:
            gauge.add_metric([status.value], counts.get(status.value, 0))
        yield gauge


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, *, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED
            method = method_label(str(scope.get("method", "")))
            self.requests.labels(method, template, str(code)).inc()
            self.latency.labels(method, template).observe(time.perf_counter() - started)


def _local_port(scope: Scope) -> int | None:
    server = scope.get("server")
    return int(server[1]) if server and server[1] is not None else None


class MetricsListener:
    """ASGI middleware: the internal metrics listener (``GENQUEUE_METRICS_PORT``) answers
    ``/metrics`` and nothing else."""

    def __init__(self, app: ASGIApp, *, port: int) -> None:
        self.app = app
        self.port = port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and _local_port(scope) == self.port
            and scope["path"] != "/metrics"
        ):
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install_metrics(app: FastAPI, state: AppState) -> None:
    registry = CollectorRegistry()
    requests = Counter(
        "genqueue_http_requests",
        "HTTP requests by method, route template and status code",
        ["method", "route", "code"],
        registry=registry,
    )
    latency = Histogram(
        "genqueue_http_request_duration_seconds",
        "HTTP request latency by method and route template",
        ["method", "route"],
        registry=registry,
    )
    webhooks = Counter(
        "genqueue_upstream_webhooks",
        "fal webhooks received, by outcome (what they changed, or why they were refused)",
        ["outcome"],
        registry=registry,
    )
    state.count_webhook = lambda outcome: webhooks.labels(outcome).inc()
    to_terminal = Histogram(
        "genqueue_time_to_terminal_seconds",
        "Seconds from a generation's creation to its terminal status, for the jobs a fal "
        "webhook ended (the worker's series has the ones its polls ended)",
        ["status"],
        buckets=TERMINAL_BUCKETS,
        registry=registry,
    )
    state.observe_terminal = lambda status, s: to_terminal.labels(status).observe(max(0.0, s))
    app.add_middleware(RequestMetrics, requests=requests, latency=latency)
    exposed = registry
    if os.environ.get(MULTIPROC_ENV):
        # Several API processes: every one writes its series to the shared directory; a
        # scrape sums them, whichever process answers.
        exposed = CollectorRegistry()
        MultiProcessCollector(exposed)  # type: ignore[no-untyped-call]
    exposed.register(GenerationsCollector(state))

    token = state.settings.metrics_token
    internal_port = state.settings.metrics_port
    if internal_port is not None:
        app.add_middleware(MetricsListener, port=internal_port)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if internal_port is not None and _local_port(request.scope) != internal_port:
            raise ApiError(404, "Not Found")  # served on GENQUEUE_METRICS_PORT only
        if token is not None and not bearer_matches(request, token.get_secret_value()):
            raise ApiError(401, METRICS_AUTH, headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(exposed), media_type=CONTENT_TYPE_LATEST)


METRICS_AUTH = "Metrics need 'Authorization: Bearer <GENQUEUE_METRICS_TOKEN>'"


def bearer_matches(request: Request, token: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <token>`` (compared in constant
    time, ``hmac.compare_digest``)."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())
