"""Publishing work to the worker by task name, after the database commit.

The API never imports the worker: a small Celery app that only sends. A publish that fails
after the commit is logged and otherwise ignored: the worker's dispatcher finds the pending row
after ``submit_grace`` and submits it anyway.
"""

import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from celery import Celery

from models import broker, tasknames

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, task_name: str, args: Sequence[Any]) -> None: ...

    def ping(self) -> bool: ...

    def close(self) -> None: ...


class CeleryPublisher:
    """Sends tasks by name to the ``genqueue`` queue; the Celery app is built on first use."""

    def __init__(self, *, broker_url: str, connect_timeout: float = 2.0) -> None:
        self.broker_url = broker_url
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        with self._lock:
            if self._app is None:
                self._app = self._make_app()
            return self._app

    def _make_app(self) -> Celery:
        app = Celery("genqueue-api", broker=self.broker_url, set_as_current=False)
        timeout = self.connect_timeout
        config = broker.celery_config(self.broker_url)  # the worker's queues, declared alike
        options = config.pop("broker_transport_options")
        app.conf.update(
            **config,
            task_serializer="json",
            broker_connection_timeout=timeout,
            broker_transport_options={
                **options,
                "socket_connect_timeout": timeout,  # Redis
                "socket_timeout": timeout,
                "read_timeout": timeout,  # RabbitMQ (a publisher confirm is read back)
                "write_timeout": timeout,
            },
            task_publish_retry_policy={
                "max_retries": 2,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            },
        )
        return app

    def publish(self, task_name: str, args: Sequence[Any]) -> None:
        self.app.send_task(task_name, args=list(args), queue=tasknames.QUEUE)

    def ping(self) -> bool:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(
                    max_retries=1, interval_start=0, timeout=self.connect_timeout
                )
            return True
        except Exception as exc:  # any failure means "not ready"; the reason is logged
            log.warning("broker does not answer: %s", exc)
            return False

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.close()
                self._app = None


def publish_after_commit(publisher: Publisher, task_name: str, args: Sequence[Any]) -> bool:
    """Publish one task for committed rows; a failure is logged, never raised."""
    try:
        publisher.publish(task_name, args)
    except Exception as exc:  # the rows are committed: the dispatcher recovers a lost publish
        log.warning(
            "publishing %s%s failed; the dispatcher will pick the rows up: %s",
            task_name,
            list(args),
            exc,
        )
        return False
    return True
