# One image for every genqueue process: api, worker, beat, flower, migrate, simulator.
#
# The base image is pinned to the exact Python the test suite runs on (3.11.7) and Debian
# release, not a moving tag; every Python package is pinned by constraints.txt. For a build
# that cannot change under you, pin the digest as well:
#   docker buildx imagetools inspect python:3.11.7-slim-bookworm   (take the index digest)
#   docker build --build-arg PYTHON_IMAGE=python:3.11.7-slim-bookworm@sha256:<digest> .
# (The digest is not written here: it could not be looked up offline, and a wrong one would
# only break the build.)
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY models/ models/
COPY worker/ worker/
COPY api/ api/
COPY migrations/ migrations/
COPY simulator/ simulator/
COPY genqueue/ genqueue/
RUN pip install -c constraints.txt . \
    && useradd --create-home --uid 10001 genqueue \
    && mkdir -p /data \
    && chown genqueue /data \
    && chmod 700 /data

USER genqueue
# Beat's schedule, Flower's state and the worker's metrics files live here (a volume each).
ENV GENQUEUE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000 5555 9808 8900

CMD ["genqueue", "api", "--host", "0.0.0.0", "--port", "8000"]
