"""The worker processes' Celery app: ``celery -A worker worker|beat|flower|inspect`` loads it
from here, and so do ``genqueue worker|beat|flower``.

The one place that reads the settings, configures logging, builds the app, defines its tasks and
installs the worker's metrics, when it is imported.
"""

from models.logs import configure_logging
from models.settings import Settings
from worker import cpu_priority, housekeeping, metrics
from worker.celery_app import create_celery
from worker.tasks import register_tasks

settings = Settings()
configure_logging(settings)
app = create_celery(settings)
register_tasks(app, settings)
housekeeping.install(app)  # ticks: no task events, DEBUG log lines unless they did something
metrics.install(app, settings)  # serves /metrics when GENQUEUE_WORKER_METRICS_PORT is set
cpu_priority.install(app, settings)  # a worker that copies but runs no polls yields the CPU

__all__ = ["app", "settings"]
