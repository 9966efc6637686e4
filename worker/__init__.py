"""genqueue's worker: ``celery -A worker worker`` and ``celery -A worker beat``.

Importing this package, or any module of it but ``worker.celery``, reads no settings, configures
no logging and builds no Celery app. ``worker.celery`` does all three: it is where Celery's
``-A worker`` finds the app (Celery looks for ``app`` in ``worker``, then in ``worker.celery``).
"""
