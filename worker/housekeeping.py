"""Beat's housekeeping ticks, kept out of the way of the generations' work.

``generation.dispatch``, ``generation.deliver_webhooks`` and ``generation.reconcile`` run every
second or few, and most of the time find nothing to do. They still run as Celery tasks on the
timer queue (so beat's guarantees hold: any worker takes them, a lost one is sent again next
tick), but they send no task events, so Flower's task list shows the tasks that serve
generations (submits, polls, cancels: what a tick publishes shows up there); and the worker logs
them at DEBUG unless their summary counts something.
"""

import logging
import re
from typing import Any

from celery import Celery
from celery.signals import beat_init

from models import tasknames

TICKS = frozenset({tasknames.DISPATCH, tasknames.WEBHOOKS, tasknames.RECONCILE, tasknames.MEDIA})
CELERY_TASK_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.worker.request")
"""Where Celery logs "Task … received", "Task … succeeded in …s: {summary}" and "Discarding
revoked task: …" (a tick that waited past its ``expires`` in a busy worker's queue: it ran
nothing)."""
_COUNTED = re.compile(r":\s*[1-9]")


def did_something(summary: Any) -> bool:
    """A tick's summary (its counts, as Celery logs them) counts at least one thing done."""
    return bool(_COUNTED.search(str(summary or "")))


class QuietTicks(logging.Filter):
    """Celery's lines about a tick that did nothing become DEBUG lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if isinstance(data, dict):
            if data.get("name") not in TICKS or did_something(data.get("return_value")):
                return True
        elif not _discarded_tick(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def _discarded_tick(record: logging.LogRecord) -> bool:
    args = record.args if isinstance(record.args, tuple) else ()
    return str(record.msg).startswith("Discarding revoked task") and bool(args) and args[0] in TICKS


def install(app: Celery) -> None:
    """Quiet the ticks in the worker's log, and keep beat from announcing them to Flower."""
    for name in CELERY_TASK_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietTicks) for f in logger.filters):
            logger.addFilter(QuietTicks())

    def no_sent_events(sender: Any = None, **_: Any) -> None:
        # beat publishes the ticks and nothing else: no "task-sent" event for them
        app.conf.task_send_sent_event = False

    beat_init.connect(no_sent_events, weak=False)
