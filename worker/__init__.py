"""genqueue's worker: ``celery -A worker worker`` and ``celery -A worker beat``."""

from models.logs import configure_logging
from models.settings import Settings
from worker import metrics
from worker.celery_app import create_celery

settings = Settings()
configure_logging(settings)
app = create_celery(settings)
metrics.install(app, settings)  # serves /metrics when GENQUEUE_WORKER_METRICS_PORT is set
celery = app

__all__ = ["app", "celery", "settings"]
