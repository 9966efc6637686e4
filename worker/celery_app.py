"""The Celery application: configuration that matters for a job system that must not lose work."""

from datetime import timedelta

from celery import Celery

from models import broker, tasknames
from models.settings import Settings

QUEUE = tasknames.QUEUE
TIMER_QUEUE = tasknames.TIMER_QUEUE
"""Polls and beat's ticks. On a queue of their own they are never stuck behind a burst of
submits (in one FIFO queue, 5,000 queued submits held every poll back for a minute)."""
TIMER_TASKS = (tasknames.POLL_BATCH, tasknames.DISPATCH, tasknames.RECONCILE)
MEDIA_QUEUE = tasknames.MEDIA_QUEUE
"""The media tick, which copies output files (up to ``media_concurrency`` at once, each up to
``media_timeout``): on its own queue, so a slow CDN never holds a poll back."""
WEBHOOK_QUEUE = tasknames.WEBHOOK_QUEUE
"""Client webhook deliveries. A receiver that never answers holds a delivery for up to its
timeout: on their own queue, consumed by a worker of their own (``-Q genqueue.webhooks``), they
take no slot a poll needs (on the poll queue, 300 deliveries to a dead receiver raised every
tenant's poll lag from 0.4 s to 13-18 s)."""


def create_celery(settings: Settings) -> Celery:
    """The app and its configuration, without tasks (``worker.tasks.register_tasks`` adds
    genqueue's; ``worker.celery`` builds the worker's app with both)."""
    app = Celery("genqueue", broker=settings.broker_url)
    app.conf.update(
        # The queues (quorum queues on RabbitMQ), declared alike by every publisher, and the
        # broker's transport options (models/broker.py). A worker consumes every queue unless
        # told otherwise; production runs one for deliveries alone.
        **broker.celery_config(settings.broker_url),
        task_routes={
            **{name: {"queue": TIMER_QUEUE} for name in TIMER_TASKS},
            tasknames.WEBHOOKS: {"queue": WEBHOOK_QUEUE},
            tasknames.MEDIA: {"queue": MEDIA_QUEUE},
        },
        task_ignore_result=True,
        # A task is acknowledged after it ran; a worker that dies mid-task gets it redelivered.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=10,
        # Flower: events on, readable names, arguments are ids only.
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_track_started=True,
        task_time_limit=300,
        task_soft_time_limit=240,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        beat_schedule={
            "dispatch-due": {
                "task": tasknames.DISPATCH,
                "schedule": timedelta(seconds=settings.tick_interval),
                "options": {"expires": max(settings.tick_interval * 5, 5.0)},
            },
            "deliver-webhooks": {
                "task": tasknames.WEBHOOKS,
                "schedule": timedelta(seconds=settings.tick_interval),
                "options": {"expires": max(settings.tick_interval * 5, 5.0)},
            },
            "copy-media": {
                "task": tasknames.MEDIA,
                "schedule": timedelta(seconds=settings.tick_interval),
                "options": {"expires": max(settings.tick_interval * 5, 5.0)},
            },
            "reconcile": {
                "task": tasknames.RECONCILE,
                "schedule": timedelta(seconds=settings.reconcile_interval),
                "options": {"expires": max(settings.reconcile_interval * 3, 15.0)},
            },
        },
    )
    return app
