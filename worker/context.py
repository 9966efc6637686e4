"""What a lifecycle function needs, passed in as values so tests can build it directly."""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from models.types import utcnow
from worker.backoff import BackoffPolicy
from worker.upstream import UpstreamClient


class TaskSender(Protocol):
    """Publishes a Celery task by name (the worker wires it to ``app.send_task``)."""

    def __call__(self, task_name: str, args: Sequence[Any]) -> None: ...


class Observer:
    """What the lifecycle reports as it goes (the worker wires this to Prometheus).
    The base class ignores everything, which is what tests and scripts want."""

    def submit_outcome(self, outcome: str) -> None:
        """One submit attempt ended with a ``SubmitResult`` value."""

    def retry(self, operation: str) -> None:
        """A transient failure scheduled another attempt (submit, poll, result, cancel)."""

    def terminal(self, status: str, created_at: datetime, now: datetime) -> None:
        """A compare-and-set into a terminal status won."""


@dataclass(frozen=True)
class Limits:
    max_submit_attempts: int = 8
    max_poll_errors: int = 60
    max_in_flight: int = 0
    lease_seconds: float = 60.0
    submit_grace: float = 10.0
    poll_batch_size: int = 50
    submit_batch_size: int = 16
    """Rows per ``generation.submit_many`` message, and the most one claim takes: each claimed
    row gets its own thread, so the lease covers one submit, not a queue of them."""
    dispatch_limit: int = 2000
    start_timeout: float | None = None
    ambiguous_submit: str = "resubmit"
    poll_threads: int = 16


@dataclass
class WorkerContext:
    sessions: sessionmaker[Session]
    client: UpstreamClient
    publish: TaskSender
    policy: BackoffPolicy = field(default_factory=BackoffPolicy)
    limits: Limits = field(default_factory=Limits)
    clock: Callable[[], datetime] = utcnow
    rand: Callable[[], float] = random.random
    observer: Observer = field(default_factory=Observer)
    send_webhook: Callable[[str, dict[str, Any]], int] | None = None
    """POSTs a client webhook (a client without the upstream key); None: no delivery."""
