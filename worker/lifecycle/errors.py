"""The ``error`` column's shape (``models.errors``), filled from an upstream error."""

from typing import Any

from models.errors import error_record
from models.vocabulary import ErrorType
from worker.upstream import UpstreamError

__all__ = ["error_record", "from_upstream"]


def from_upstream(kind: ErrorType, exc: UpstreamError) -> dict[str, Any]:
    return error_record(
        kind,
        exc.message,
        http_status=exc.http_status,
        body=exc.body,
        error_type=exc.error_type,
    )
