"""Upstream said COMPLETED: fetch the result at once (it expires upstream) and end the job."""

import logging
from datetime import datetime
from typing import Any

from models.status import GenerationStatus
from models.vocabulary import ErrorType, EventKind
from worker.context import WorkerContext
from worker.lifecycle.errors import error_record, from_upstream
from worker.lifecycle.snapshot import Snapshot, Write, end_job, retry_later
from worker.upstream import (
    StatusReport,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTransient,
)

log = logging.getLogger(__name__)
CANCELLED_TYPES = {"client_cancelled", "client_disconnected"}


def settle_completed(ctx: WorkerContext, snap: Snapshot, report: StatusReport) -> Write:
    now = ctx.clock()
    run_seconds = _run_seconds(snap, now)
    try:
        answer = ctx.client.result(snap.response_url)
    except UpstreamNotFound as exc:
        error = from_upstream(ErrorType.RESULT_UNAVAILABLE, exc)
        error["message"] = "upstream completed the job but no longer has its result (expired?)"
        return end_job(ctx, snap, GenerationStatus.FAILED, error, EventKind.FAILED)
    except UpstreamRejected as exc:
        return end_job(
            ctx,
            snap,
            GenerationStatus.FAILED,
            from_upstream(ErrorType.UPSTREAM_REJECTED, exc),
            EventKind.FAILED,
        )
    except UpstreamTransient as exc:
        return retry_later(ctx, snap, kind=EventKind.RESULT_RETRY, exc=exc)
    detail: dict[str, Any] = {"http_status": answer.http_status, "metrics": report.metrics}
    if snap.cancel_requested_at:
        detail["cancel_requested"] = True
    if answer.ok:
        if snap.cancel_requested_at:
            detail["note"] = "cancel came too late: upstream finished the job"
        return end_job(
            ctx,
            snap,
            GenerationStatus.COMPLETED,
            None,
            EventKind.COMPLETED,
            result=answer.body,
            detail=detail,
            run_seconds=run_seconds,
        )
    error = error_record(
        ErrorType.CANCELLED
        if _is_cancel(answer.http_status, answer.error_type)
        else ErrorType.UPSTREAM_ERROR,
        report.error or _message(answer.body) or f"upstream answered HTTP {answer.http_status}",
        http_status=answer.http_status,
        body=answer.body,
        error_type=answer.error_type or report.error_type,
    )
    detail["error_type"] = error["error_type"]
    if error["type"] == ErrorType.CANCELLED:
        return end_job(
            ctx, snap, GenerationStatus.CANCELLED, error, EventKind.CANCELLED, detail=detail
        )
    return end_job(
        ctx,
        snap,
        GenerationStatus.FAILED,
        error,
        EventKind.FAILED,
        detail=detail,
        run_seconds=run_seconds,
    )


def _is_cancel(http_status: int, error_type: str | None) -> bool:
    return http_status == 499 or (error_type or "") in CANCELLED_TYPES


def _message(body: Any) -> str | None:
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            return "; ".join(str(d.get("msg", "")) for d in detail)
    return None


def _run_seconds(snap: Snapshot, now: datetime) -> float:
    """Upstream's finish lies between our last poll that saw it unfinished and now: take the
    middle, so the estimate neither lags behind nor drifts later with our own detection delay."""
    last = snap.last_polled_at or snap.submitted_at
    finished = last + (now - last) / 2
    return max(0.0, float((finished - snap.submitted_at).total_seconds()))
