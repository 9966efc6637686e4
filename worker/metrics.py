"""The worker's Prometheus metrics: what it asked upstream, what it retried, how jobs ended.

Counters and histograms are recorded where things happen (the ``record_*`` hooks below, called
by the lifecycle code and the upstream client). Gauges that describe the backlog (poll lag, due
rows) are *not* kept in memory: they are read from the database when Prometheus scrapes, so every
worker reports the same truth and nothing drifts when a worker dies.

One HTTP server per worker, in the main process (``install`` starts it on ``worker_init``, so
``celery -A worker beat``/``inspect`` never do). A prefork pool records in its child processes,
so counters are shared through prometheus_client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR``
must be set before the worker starts (``genqueue worker`` does it: ``<data_dir>/metrics/worker-
<port>``, wiped at start). The thread pool (``genqueue up``) needs nothing.
"""

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.media import waiting_for_copy
from models.settings import Settings
from models.status import ACTIVE, GenerationStatus
from models.tables import MEDIA_FILES, Generation
from models.types import utcnow

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ENDPOINTS = ("submit", "status", "result", "cancel")
SUBMIT_OUTCOMES = ("submitted", "retry", "ambiguous", "failed", "deferred", "skipped")
RETRY_OPERATIONS = ("submit", "poll", "result", "cancel")
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TERMINAL_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)

UPSTREAM_REQUESTS = Counter(
    "genqueue_upstream_requests",
    "Upstream HTTP calls by endpoint and status code ('error': no HTTP answer arrived).",
    ["endpoint", "code"],
)
UPSTREAM_SECONDS = Histogram(
    "genqueue_upstream_request_duration_seconds",
    "Duration of upstream HTTP calls by endpoint.",
    ["endpoint"],
    buckets=DURATION_BUCKETS,
)
RETRIES = Counter(
    "genqueue_retries",
    "Transient failures that scheduled another attempt, by operation.",
    ["operation"],
)
SUBMIT_OUTCOMES_TOTAL = Counter(
    "genqueue_submit_outcomes",
    "Submit attempts by outcome; 'ambiguous' means upstream may or may not have the job.",
    ["outcome"],
)
TIME_TO_TERMINAL = Histogram(
    "genqueue_time_to_terminal_seconds",
    "Seconds from a generation's creation to its terminal status.",
    ["status"],
    buckets=TERMINAL_BUCKETS,
)


def record_upstream_call(endpoint: str, status_code: int | None, seconds: float) -> None:
    """One upstream HTTP attempt ended: ``status_code`` None when no answer came (connect
    error, timeout, reset)."""
    code = "error" if status_code is None else str(status_code)
    UPSTREAM_REQUESTS.labels(endpoint=endpoint, code=code).inc()
    UPSTREAM_SECONDS.labels(endpoint=endpoint).observe(max(0.0, seconds))


def record_retry(operation: str) -> None:
    """A transient failure scheduled another attempt (``submit``, ``poll``, ``result``, …)."""
    RETRIES.labels(operation=operation).inc()


def record_submit_outcome(outcome: str) -> None:
    """The outcome of one submit: a ``SubmitResult`` value (``submitted``, ``ambiguous``, …)."""
    SUBMIT_OUTCOMES_TOTAL.labels(outcome=outcome).inc()


def record_terminal(status: str, seconds: float) -> None:
    """A generation reached ``status`` (completed/failed/cancelled) ``seconds`` after creation.
    Call it only when the compare-and-set won, so each job is counted once."""
    TIME_TO_TERMINAL.labels(status=status).observe(max(0.0, seconds))


class BacklogCollector(Collector):
    """Gauges read from the database at scrape time: how late the oldest due row is.

    ``clock`` is the time the rows are compared with: the database's (``models.dbclock``), as
    the worker's leases and polls use it, so a host whose clock runs ahead or behind reports
    the same lag as the others; the local clock only where no database clock is given."""

    def __init__(
        self, sessions: sessionmaker[Session], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.sessions = sessions
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "genqueue_worker_database_up", "1 if the backlog query answered at this scrape."
        )
        try:
            polls, submits, media = self._lags(self.clock())
        except Exception:
            log.warning("metrics: backlog query failed", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        lag = GaugeMetricFamily(
            "genqueue_poll_lag_seconds",
            "now - the oldest due next_poll_at of queued/running generations (0 if none is due).",
        )
        lag.add_metric([], polls[0])
        yield lag
        submit_lag = GaugeMetricFamily(
            "genqueue_submit_lag_seconds",
            "now - the oldest due next_poll_at of pending generations (0 if none is due).",
        )
        submit_lag.add_metric([], submits[0])
        yield submit_lag
        due = GaugeMetricFamily(
            "genqueue_due_generations",
            "Generations whose next_poll_at has passed.",
            labels=["kind"],
        )
        due.add_metric(["poll"], polls[1])
        due.add_metric(["submit"], submits[1])
        yield due
        media_lag = GaugeMetricFamily(
            "genqueue_media_lag_seconds",
            "now - the oldest due next_at of output files waiting for their copy, not leased "
            "(0 if none is due): the copies yield the CPU to polls, this says how far behind.",
        )
        media_lag.add_metric([], media[0])
        yield media_lag
        media_due = GaugeMetricFamily(
            "genqueue_due_media_files", "Output files due for a copy that no copy holds."
        )
        media_due.add_metric([], media[1])
        yield media_due

    def _lags(
        self, now: datetime
    ) -> tuple[tuple[float, int], tuple[float, int], tuple[float, int]]:
        with self.sessions() as session:
            polls = _due(session, now, ACTIVE)
            submits = _due(session, now, (GenerationStatus.PENDING,))
            media = _oldest(session, now, MEDIA_FILES.c.next_at, waiting_for_copy(now))
        return polls, submits, media


def _due(
    session: Session, now: datetime, statuses: Iterable[GenerationStatus]
) -> tuple[float, int]:
    due_at = Generation.next_poll_at
    status = Generation.status.in_([s.value for s in statuses])
    return _oldest(session, now, due_at, and_(status, due_at <= now))


def _oldest(
    session: Session, now: datetime, due_at: Any, due: ColumnElement[bool]
) -> tuple[float, int]:
    """How late the oldest ``due`` row is (by ``due_at``), and how many such rows."""
    row = session.execute(select(func.min(due_at), func.count()).where(due)).one()
    oldest, count = row
    if oldest is None:
        return 0.0, 0
    if oldest.tzinfo is None:  # SQLite aggregates bypass the column type
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - oldest).total_seconds()), int(count)


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def serve(
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: Callable[[], datetime] = utcnow,
) -> int:
    """Start the /metrics HTTP server in this process; return the port it listens on. The
    backlog gauges compare rows with ``clock`` (the worker passes the database's)."""
    port = settings.worker_metrics_port or 0
    registry: CollectorRegistry = REGISTRY
    if multiprocess_enabled():
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(BacklogCollector(sessions, clock))
    _touch_known_labels()
    server, _thread = start_http_server(port, addr=settings.worker_metrics_host, registry=registry)
    bound = int(server.server_address[1])
    log.info("worker metrics on http://%s:%d/metrics", settings.worker_metrics_host, bound)
    return bound


def _touch_known_labels() -> None:
    """Create the known label sets at zero, so dashboards see the series before the first event."""
    for outcome in SUBMIT_OUTCOMES:
        SUBMIT_OUTCOMES_TOTAL.labels(outcome=outcome)
    for operation in RETRY_OPERATIONS:
        RETRIES.labels(operation=operation)
    for endpoint in ENDPOINTS:
        UPSTREAM_SECONDS.labels(endpoint=endpoint)


_installed: dict[int, bool] = {}


def install(app: Any, settings: Settings) -> None:
    """Serve /metrics from the worker's main process when ``worker_metrics_port`` is set.

    Connects to Celery's ``worker_init`` (sent only by ``celery worker``, before the pool
    forks); calling it more than once for one app is harmless.
    """
    if settings.worker_metrics_port is None or _installed.get(id(app)):
        return
    _installed[id(app)] = True
    from celery.signals import worker_init

    from models.db import make_engine, make_session_factory
    from models.dbclock import DatabaseClock

    def _start(sender: Any = None, **_: Any) -> None:
        if sender is not None and getattr(sender, "app", app) is not app:
            return
        pool = str(getattr(sender, "pool_cls", ""))
        if "prefork" in pool.lower() and not multiprocess_enabled():
            log.warning(
                "worker metrics: prefork pool without %s; counters recorded in pool processes "
                "will not be exported (run `genqueue worker`, or set %s)",
                MULTIPROC_ENV,
                MULTIPROC_ENV,
            )
        engine = make_engine(settings.database_url)
        serve(settings, make_session_factory(engine), DatabaseClock(engine))

    worker_init.connect(_start, weak=False)
