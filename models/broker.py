"""What differs between the two brokers genqueue supports, kept in one place for every client.

Redis (``redis://``, ``rediss://``, ``redis+socket://``) and RabbitMQ (``amqp://``, ``amqps://``,
``pyamqp://``). Every client of a RabbitMQ virtual host must declare a queue with the arguments
it was first declared with, or the broker refuses it (``PRECONDITION_FAILED - inequivalent arg
'x-queue-type'``): the API's publisher, the worker, beat, the tests and the benchmarks all take
their queues from :func:`task_queues`.

On RabbitMQ the queues are quorum queues: replicated by Raft across a cluster's nodes, always
durable, with a delivery count per message. Celery's documented caveats of quorum queues cost
genqueue nothing: global QoS is off (Celery detects the queue type and applies the prefetch per
consumer; genqueue prefetches one message and does not autoscale), and an ETA or countdown would
hold a worker slot until due (genqueue publishes none: the database is its timer, each row's
``next_poll_at``).
"""

from typing import Any

from kombu.entity import Queue

from models import tasknames

RABBITMQ_SCHEMES = ("amqp", "amqps", "pyamqp")
QUEUE_NAMES = (
    tasknames.QUEUE,
    tasknames.TIMER_QUEUE,
    tasknames.WEBHOOK_QUEUE,
    tasknames.MEDIA_QUEUE,
)
QUORUM = {"x-queue-type": "quorum"}
REDIS_VISIBILITY_TIMEOUT = 300
"""Seconds before Redis hands an unacknowledged message to another worker. Tasks run for
seconds and nothing uses countdowns or ETAs, so a message that comes back after five minutes
does no harm. RabbitMQ needs no such timer: it requeues a message the moment the connection
of the worker that held it closes (a killed worker's, within a heartbeat)."""


def is_rabbitmq(url: str) -> bool:
    return url.split("://", 1)[0].lower() in RABBITMQ_SCHEMES


def task_queues(url: str) -> list[Queue]:
    """genqueue's queues, declared alike by every client of the broker at ``url``."""
    arguments = dict(QUORUM) if is_rabbitmq(url) else None
    return [Queue(name, queue_arguments=arguments) for name in QUEUE_NAMES]  # type: ignore[no-untyped-call]


def transport_options(url: str) -> dict[str, Any]:
    """kombu's transport options for the broker at ``url``.

    RabbitMQ: publisher confirms, so a publish returns once the broker has taken the message
    into the queue (a publish into a broker that dies first raises, and the caller's fallback,
    the dispatcher, takes over) rather than once it left the socket."""
    if is_rabbitmq(url):
        return {"confirm_publish": True}
    return {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT}


def celery_config(url: str) -> dict[str, Any]:
    """The Celery settings that depend on the broker, for the worker's app and publishers'."""
    return {
        "task_queues": task_queues(url),
        "task_default_queue": tasknames.QUEUE,
        "broker_transport_options": transport_options(url),
    }
