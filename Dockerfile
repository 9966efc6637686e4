# One image for every genqueue process: api, worker, beat, flower, migrate, simulator.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY models/ models/
COPY worker/ worker/
COPY api/ api/
COPY migrations/ migrations/
COPY simulator/ simulator/
COPY genqueue/ genqueue/
RUN pip install . \
    && useradd --create-home --uid 10001 genqueue \
    && mkdir -p /data \
    && chown genqueue /data

USER genqueue
# Beat's schedule, Flower's state and the worker's metrics files live here (a volume each).
ENV GENQUEUE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000 5555 9808 8900

CMD ["genqueue", "api", "--host", "0.0.0.0", "--port", "8000"]
