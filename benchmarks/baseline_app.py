"""The Celery app of the baselines: genqueue's own Celery configuration (broker, queue, acks,
prefetch, events, time limits), with a result backend and two plain tasks instead of genqueue's.

``celery -A benchmarks.baseline_app worker`` runs it with the same pool and concurrency as the
genqueue worker it is compared with. The upstream key comes from the environment, never from a
task argument.
"""

import time
from typing import Any

from benchmarks.celery_client import NAIVE, NOOP
from models.settings import Settings
from worker.celery_app import create_celery
from worker.upstream import QueueState, UpstreamClient

MODEL = "fal-ai/flux-pro/kontext/text-to-image"

settings = Settings()
app = create_celery(settings)
app.conf.update(
    include=[],
    beat_schedule={},
    result_backend=settings.broker_url,
    result_expires=3600,
)

_clients: dict[str, UpstreamClient] = {}


def _client() -> UpstreamClient:
    client = _clients.get("upstream")
    if client is None:
        client = UpstreamClient(
            base_url=settings.upstream_url,
            key=settings.upstream_key,
            auth_scheme=settings.upstream_auth_scheme,
            read_timeout=settings.upstream_read_timeout,
        )
        _clients["upstream"] = client
    return client


@app.task(name=NOOP, ignore_result=False)  # type: ignore[untyped-decorator]
def noop() -> None:
    """The cheapest possible round trip: the broker, the pool, the result backend."""


@app.task(name=NAIVE, ignore_result=False)  # type: ignore[untyped-decorator]
def naive_generation(prompt: str, interval: float, max_seconds: float) -> dict[str, Any]:
    """What genqueue replaces: submit, then hold a worker slot in a ``while``/``sleep`` loop."""
    client = _client()
    handle = client.submit(MODEL, {"prompt": prompt})
    polls = 0
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        polls += 1
        if client.status(handle.status_url).state is QueueState.COMPLETED:
            client.result(handle.response_url)
            return {"request_id": handle.request_id, "polls": polls, "completed": True}
        time.sleep(interval)
    return {"request_id": handle.request_id, "polls": polls, "completed": False}
