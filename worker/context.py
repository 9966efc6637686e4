"""What a lifecycle function needs, passed in as values so tests can build it directly."""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx
from sqlalchemy.orm import Session, sessionmaker

from models.media_store import MediaStore
from models.media_urls import MediaUrls
from models.secretbox import SecretBox
from models.settings import Settings, from_setting, setting_values
from models.types import utcnow
from worker.backoff import BackoffPolicy
from worker.lifecycle.webhook_http import Sender
from worker.upstream import UpstreamClient


class TaskSender(Protocol):
    """Publishes a Celery task by name (the worker wires it to ``app.send_task``)."""

    def __call__(self, task_name: str, args: Sequence[Any]) -> None: ...


class Observer:
    """What the lifecycle reports as it goes (the worker wires this to Prometheus), each call
    made once what it reports is committed. The base class ignores everything, which is what
    tests and scripts want."""

    def submit_outcome(self, outcome: str) -> None:
        """One submit attempt ended with a ``SubmitResult`` value."""

    def retry(self, operation: str) -> None:
        """A transient failure scheduled another attempt (submit, poll, result, cancel)."""

    def terminal(self, status: str, created_at: datetime, now: datetime) -> None:
        """A compare-and-set into a terminal status won."""


@dataclass(frozen=True)
class Limits:
    """The worker's limits: ``from_settings`` in a worker; tests build them directly (each
    default is the setting's own)."""

    max_submit_attempts: int = from_setting("max_submit_attempts")
    max_poll_errors: int = from_setting("max_poll_errors")
    deadline_grace: float = from_setting("deadline_grace")
    """Seconds past its deadline a job whose upstream cancel was sent is still polled: upstream
    may finish it anyway (then it is ``completed``); after that it ends ``failed``."""
    max_in_flight: int = from_setting("max_in_flight")
    lease_seconds: float = from_setting("lease_seconds")
    submit_grace: float = from_setting("submit_grace")
    poll_batch_size: int = from_setting("poll_batch_size")
    submit_batch_size: int = from_setting("submit_batch_size")
    """Rows per ``generation.submit_many`` message, and the most one claim takes: each claimed
    row gets its own thread, so the lease covers one submit, not a queue of them."""
    dispatch_limit: int = from_setting("dispatch_limit")
    retention_days: float = from_setting("retention_days")
    """Days after it ended that a job and its events are deleted; 0 = kept forever."""
    start_timeout: float | None = from_setting("upstream_start_timeout")
    webhook_url: str | None = from_setting("upstream_webhook_url")
    """genqueue's ``POST /webhooks/fal``, sent with every submit as ``?fal_webhook=``."""
    webhook_timeout: float = from_setting("webhook_timeout")
    webhook_concurrency: int = from_setting("webhook_concurrency")
    webhook_per_destination: int = from_setting("webhook_per_destination")
    webhook_retry_schedule: tuple[float, ...] = from_setting("webhook_retry_schedule")
    ambiguous_submit: str = from_setting("ambiguous_submit")
    media_max_bytes: int = from_setting("media_max_bytes")
    media_deadline: float = from_setting("media_deadline")
    media_timeout: float = from_setting("media_timeout")
    media_concurrency: int = from_setting("media_concurrency")
    media_nice: int = from_setting("media_nice")
    media_retention_days: float = from_setting("media_retention_days")
    media_wait: float = from_setting("media_wait")
    poll_threads: int = 16
    """Upstream checks of a poll batch made at once (not a setting)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(**setting_values(cls, settings))


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
    secret_box: Callable[[], SecretBox] | None = None
    """Gives the box that opens the tenants' webhook signing secrets, built on first use (a
    worker that delivers no webhook never reads the key); None: none can be signed (or sent)."""
    send_webhook: Sender | None = None
    """POSTs a client webhook under the address policy (a client without the upstream key);
    None: no delivery."""
    media_store: MediaStore | None = None
    """Where output files are copied; None: no copies (tests of other things)."""
    media_http: httpx.Client | None = None
    """The copies' pooled HTTP client (``worker.lifecycle.media.media_http``)."""
    media_urls: MediaUrls | None = None
    """Builds genqueue's URLs of stored files for webhook payloads; None: they carry the
    upstream's (``models.media_urls.configured_urls``)."""
    expected_run_seconds: Callable[[str], float | None] = field(default=lambda model: None)
    """A model's run time from the catalogue, the poll schedule's prior before the model has
    history of its own (``worker.backoff.prior_window``); None: no prior."""
