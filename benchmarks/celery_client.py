"""The benchmark's side of the Celery baselines: send tasks by name, wait for all their results."""

import time
from typing import Any

from celery import Celery
from celery.result import AsyncResult, ResultSet

from models import tasknames

NOOP = "bench.noop"
NAIVE = "bench.naive_generation"


def client_app(broker_url: str) -> Celery:
    app = Celery("bench-client", broker=broker_url, backend=broker_url, set_as_current=False)
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
    return app


def _join(app: Celery, results: list[AsyncResult], timeout: float) -> list[Any]:
    values: list[Any] = ResultSet(results, app=app).join_native(timeout=timeout, propagate=True)
    for result in results:
        result.forget()
    return values


def noop_round_trips(app: Celery, count: int, timeout: float) -> float:
    """Send ``count`` no-op tasks as fast as possible; seconds until every result is back."""
    began = time.perf_counter()
    results = [app.send_task(NOOP, queue=tasknames.QUEUE) for _ in range(count)]
    _join(app, results, timeout)
    return time.perf_counter() - began


def naive_generations(
    app: Celery, *, count: int, prompt: str, interval: float, max_seconds: float, timeout: float
) -> tuple[float, list[dict[str, Any]]]:
    """Run ``count`` naive poll-loop tasks; seconds until all finished, and what each returned."""
    began = time.perf_counter()
    results = [
        app.send_task(NAIVE, args=[f"{prompt} #{n}", interval, max_seconds], queue=tasknames.QUEUE)
        for n in range(count)
    ]
    values = _join(app, results, timeout)
    return time.perf_counter() - began, [v for v in values if isinstance(v, dict)]
