"""Real RabbitMQ for the tests: a virtual host of this run's own on the machine's RabbitMQ
(``GENQUEUE_TEST_RABBITMQ``, default 127.0.0.1:5672 guest/guest, managed with ``rabbitmqctl``),
or a node of our own (``rabbitmq-server`` into a temp dir) that the fault suite may kill and
start again. When neither can be had the test fails with the reason: it is never skipped."""

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from celery import Celery

from models import broker
from sandbox import rabbitmq
from sandbox.rabbitmq import answers
from tests.support.leaks import marked

RABBITMQ_URL = os.environ.get("GENQUEUE_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672")


def _safe(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 5672}"


class RabbitMQServer(rabbitmq.RabbitMQServer):
    """A RabbitMQ node of our own on the loopback, its temp dir named for this test run."""

    def __init__(self) -> None:
        super().__init__(prefix=marked("gq-rabbitmq-"))


def _rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl")
    if not ctl:
        raise RuntimeError(
            f"RabbitMQ answers at {_safe(RABBITMQ_URL)} but rabbitmqctl is not installed: "
            "a test run needs it to make a virtual host of its own"
        )
    done = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip() or done.stdout}")


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A broker URL on a virtual host of this run's own (deleted afterwards, queues and all),
    on the machine's RabbitMQ; or on a node of our own when that RabbitMQ does not answer."""
    parts = urlsplit(RABBITMQ_URL)
    if not answers(parts.hostname or "127.0.0.1", parts.port or 5672):
        server = RabbitMQServer()
        try:
            server.start()
            yield server.url
        finally:
            server.close()
        return
    vhost = f"gq-test-{uuid.uuid4().hex[:12]}"
    user = parts.username or "guest"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield f"{parts.scheme}://{parts.netloc}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def publisher_app(name: str, broker_url: str, **conf: Any) -> Celery:
    """A Celery app that sends to genqueue's queues the way the API does (on RabbitMQ, the
    queues must be declared with the worker's arguments)."""
    app = Celery(name, broker=broker_url, set_as_current=False)
    app.conf.update(**broker.celery_config(broker_url), **conf)
    return app
