"""The children of `genqueue up`: where each listens (:class:`Plan`), the environment they
share and the little each is given or kept from alone, and how each is started."""

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from genqueue import embedded_redis
from genqueue.datadir import DataDir
from genqueue.supervisor import ChildSpec
from models import tasknames
from models.settings import Settings

WORKER_THREADS = 8
WEBHOOK_THREADS = 2
"""Delivery ticks at once; each runs its deliveries on threads of its own (GENQUEUE_WEBHOOK_…)."""
UPSTREAM_KEY_ENV = ("GENQUEUE_UPSTREAM_KEY", "FAL_KEY")
"""Only the child that calls upstream (``worker``) is given these."""
UPSTREAM_CALLER = "worker"
WORKERS = ("worker", "webhooks")
"""The children that build media URLs without a request to read a host from (webhooks)."""
FLOWER_PASSWORD_ENV = "GENQUEUE_FLOWER_PASSWORD"


@dataclass(frozen=True)
class Plan:
    """Where every part of the system listens."""

    host: str
    api_port: int
    flower_port: int
    metrics_port: int
    redis_dir: Path | None
    """The embedded Redis's directory (its socket, its AOF); None with an outside broker."""
    simulator_port: int | None

    @property
    def local_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host

    @property
    def api_url(self) -> str:
        return f"http://{self.local_host}:{self.api_port}"

    @property
    def flower_url(self) -> str:
        return f"http://{self.local_host}:{self.flower_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def simulator_url(self) -> str | None:
        return f"http://127.0.0.1:{self.simulator_port}" if self.simulator_port else None


def child_env(settings: Settings, data: DataDir, plan: Plan) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "GENQUEUE_DATA_DIR": str(data.root),
            "GENQUEUE_DATABASE_URL": settings.database_url,
            "GENQUEUE_WORKER_METRICS_PORT": str(plan.metrics_port),
            "GENQUEUE_WORKER_METRICS_HOST": "127.0.0.1",
            "GENQUEUE_FLOWER_USER": settings.flower_user,
            "GENQUEUE_WEBHOOK_ALLOW_PRIVATE": str(settings.webhook_allow_private).lower(),
            "GENQUEUE_MEDIA_ALLOW_PRIVATE": str(settings.media_allow_private).lower(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if plan.redis_dir is not None:
        env["GENQUEUE_BROKER_URL"] = embedded_redis.redis_url(plan.redis_dir)
    if plan.simulator_url:
        env["GENQUEUE_UPSTREAM_URL"] = plan.simulator_url
        # The simulator plays fal's webhooks too: to this API, signed with its own key.
        env.setdefault("GENQUEUE_UPSTREAM_WEBHOOK_URL", f"{plan.api_url}/webhooks/fal")
        env.setdefault("GENQUEUE_FAL_JWKS_URL", f"{plan.simulator_url}/.well-known/jwks.json")
    return env


def worker_env(settings: Settings, plan: Plan) -> dict[str, str]:
    """What the workers alone are given: the API's URL as ``GENQUEUE_PUBLIC_URL`` (unless set),
    so the media URLs in client webhooks are genqueue's. The API itself keeps reading the
    request's host (a client on another machine reaches it by another name)."""
    if settings.public_url:
        return {}
    return {"GENQUEUE_PUBLIC_URL": plan.api_url}


def specs(
    plan: Plan,
    data: DataDir,
    flower_auth: tuple[str, str],
    *,
    worker_env: dict[str, str],
) -> list[ChildSpec]:
    """Every child in start order; the shared environment is :func:`child_env`."""
    gq = [sys.executable, "-m", "genqueue"]
    children: list[ChildSpec] = []
    if plan.redis_dir is not None:
        redis_dir = plan.redis_dir
        children.append(
            ChildSpec(
                "redis",
                embedded_redis.redis_argv(directory=redis_dir),
                ready=lambda: embedded_redis.answers(redis_dir),
            )
        )
    if plan.simulator_port is not None:
        children.append(
            ChildSpec(
                "simulator",
                [
                    *gq,
                    "simulator",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(plan.simulator_port),
                    "--state-dir",
                    str(data.simulator),
                ],
                ready=http_answers(f"{plan.simulator_url}/_sim/health"),
            )
        )
    children += [
        ChildSpec(
            "api",
            [*gq, "api", "--host", plan.host, "--port", str(plan.api_port)],
            ready=http_answers(f"{plan.api_url}/healthz"),
        ),
        ChildSpec(
            "worker",
            [*gq, "worker", "--pool", "threads", "--concurrency", str(WORKER_THREADS),
             "-Q", f"{tasknames.QUEUE},{tasknames.TIMER_QUEUE}",
             "--loglevel", "INFO", "--hostname", "genqueue-up@%h",
             "--without-mingle", "--without-gossip"],
            ready=http_answers(plan.metrics_url),
            stop_timeout=30.0,
        ),
        # Client webhook deliveries, on a worker of their own: a receiver that never answers
        # holds its threads, never the one that polls. (The worker above serves /metrics.)
        ChildSpec(
            "webhooks",
            [*gq, "worker", "--pool", "threads", "--concurrency", str(WEBHOOK_THREADS),
             "-Q", f"{tasknames.WEBHOOK_QUEUE},{tasknames.MEDIA_QUEUE}",
             "--loglevel", "INFO", "--hostname", "genqueue-up-webhooks@%h",
             "--without-mingle", "--without-gossip"],
            stop_timeout=30.0,
            unset=("GENQUEUE_WORKER_METRICS_PORT",),
        ),
        ChildSpec("beat", [*gq, "beat", "--loglevel", "WARNING"]),
        ChildSpec(
            "flower",
            [*gq, "flower", f"--address={plan.local_host}", f"--port={plan.flower_port}"],
            ready=http_answers(f"{plan.flower_url}/healthcheck", auth=flower_auth),
        ),
    ]  # fmt: skip
    for spec in children:
        if spec.name in WORKERS:
            spec.env = {**spec.env, **worker_env}
        if spec.name != UPSTREAM_CALLER:
            spec.unset = (*spec.unset, *UPSTREAM_KEY_ENV)
        if spec.name != "flower":
            spec.unset = (*spec.unset, FLOWER_PASSWORD_ENV)
    return children


def http_answers(url: str, auth: tuple[str, str] | None = None) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, auth=auth, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check
