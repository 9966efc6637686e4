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


CANCELLED_TYPES = frozenset({"client_cancelled", "client_disconnected"})
"""fal's error types of a job that ended because its caller cancelled it."""


def is_cancel(http_status: int | None, error_type: str | None) -> bool:
    """Whether an upstream error means the job was cancelled (499, or a cancelled type)."""
    return http_status == 499 or (error_type or "") in CANCELLED_TYPES


def upstream_message(body: Any) -> str | None:
    """The message in an upstream error body: its ``detail`` string, or the ``msg`` of each
    item of a FastAPI-style ``detail`` list."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            return "; ".join(str(d.get("msg", "")) for d in detail)
    return None
