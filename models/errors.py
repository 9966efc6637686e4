"""The ``error`` column's shape: what ended a job, with the upstream's own code and body kept."""

from typing import Any

from models.vocabulary import ErrorType


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
