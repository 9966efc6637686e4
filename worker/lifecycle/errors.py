"""The ``error`` column's shape: what ended a job, with the upstream's own code and body kept."""

from typing import Any

from models.vocabulary import ErrorType
from worker.upstream import UpstreamError


def error_record(
    kind: ErrorType,
    message: str,
    *,
    http_status: int | None = None,
    body: Any = None,
    error_type: str | None = None,
) -> dict[str, Any]:
    return {
        "type": kind.value,
        "message": message,
        "http_status": http_status,
        "error_type": error_type,
        "body": body,
    }


def from_upstream(kind: ErrorType, exc: UpstreamError) -> dict[str, Any]:
    return error_record(
        kind,
        exc.message,
        http_status=exc.http_status,
        body=exc.body,
        error_type=exc.error_type,
    )
