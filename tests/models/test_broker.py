"""Which broker a URL names, and the queues and transport options each broker gets."""

from typing import Any

import pytest

from models import broker, tasknames


@pytest.mark.parametrize(
    ("url", "rabbit"),
    [
        ("amqp://guest:guest@127.0.0.1:5672//", True),
        ("AMQPS://user:pw@mq.example:5671/genqueue", True),
        ("pyamqp://mq/", True),
        ("redis://127.0.0.1:6379/0", False),
        ("rediss://cache.example:6380/1", False),
        ("redis+socket:///tmp/redis.sock", False),
    ],
)
def test_the_scheme_names_the_broker(url: str, rabbit: bool) -> None:
    assert broker.is_rabbitmq(url) is rabbit


def test_rabbitmq_gets_quorum_queues_and_publisher_confirms() -> None:
    url = "amqp://guest:guest@127.0.0.1:5672//"
    queues: list[Any] = broker.task_queues(url)  # kombu declares no attributes to mypy
    assert [q.name for q in queues] == [
        tasknames.QUEUE,
        tasknames.TIMER_QUEUE,
        tasknames.WEBHOOK_QUEUE,
        tasknames.MEDIA_QUEUE,
    ]
    assert all(q.queue_arguments == {"x-queue-type": "quorum"} for q in queues)
    assert broker.transport_options(url) == {"confirm_publish": True}


def test_redis_gets_plain_queues_and_a_visibility_timeout() -> None:
    url = "redis://127.0.0.1:6379/0"
    queues: list[Any] = broker.task_queues(url)
    assert all(not q.queue_arguments for q in queues)
    assert broker.transport_options(url) == {"visibility_timeout": 300}


def test_the_worker_and_the_api_declare_the_same_queues() -> None:
    """On RabbitMQ a queue declared with other arguments is refused (PRECONDITION_FAILED)."""
    from api.publisher import CeleryPublisher
    from models.settings import Settings
    from worker.celery_app import create_celery

    url = "amqp://guest:guest@127.0.0.1:5672/somewhere"
    worker = create_celery(Settings(broker_url=url))
    api = CeleryPublisher(broker_url=url).app

    def declared(app: object) -> dict[str, object]:
        queues = app.amqp.queues  # type: ignore[attr-defined]
        return {name: queues[name].queue_arguments for name in broker.QUEUE_NAMES}

    assert declared(worker) == declared(api) == {n: broker.QUORUM for n in broker.QUEUE_NAMES}
    assert api.conf.broker_transport_options["confirm_publish"] is True
    assert worker.conf.broker_transport_options == {"confirm_publish": True}
