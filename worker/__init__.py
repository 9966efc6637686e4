"""genqueue's worker: ``celery -A worker worker`` and ``celery -A worker beat``."""

from models.logs import configure_logging
from models.settings import Settings
from worker.celery_app import create_celery

settings = Settings()
configure_logging(settings)
app = create_celery(settings)
celery = app

__all__ = ["app", "celery", "settings"]
