"""Normal (fault-free) answers to status, result and cancel calls on a known job."""

from simulator.jobs import ERROR_MESSAGES, Job, JobError, JobState
from simulator.payloads import Wall, result_body, status_body
from simulator.replies import Reply, detail

NOT_FOUND = "Request not found"
REQUEST_ID_HEADER = "x-fal-request-id"
BILLABLE_UNITS_HEADER = "x-fal-billable-units"


def _ids(job: Job) -> dict[str, str]:
    return {REQUEST_ID_HEADER: job.request_id}


def status_reply(job: Job, base: str, position: int | None, *, logs: bool, wall: Wall) -> Reply:
    """202 while waiting or running, 200 once COMPLETED (UPSTREAM.md §5)."""
    body = status_body(job, base, position, logs=logs, wall=wall)
    code = 200 if job.state is JobState.COMPLETED else 202
    return Reply(code, body, _ids(job))


def result_reply(job: Job, base: str, *, expired: bool) -> Reply:
    """The model's answer once COMPLETED; 400 before; 404 when gone (UPSTREAM.md §6)."""
    if job.state is not JobState.COMPLETED:
        return detail(400, "Request is still in progress", _ids(job))
    if expired:
        return detail(404, NOT_FOUND)
    error = job.error
    if error is not None:
        return Reply(error.status_code, error.body, {**error.headers, **_ids(job)})
    billed = {BILLABLE_UNITS_HEADER: str(job.params.num_images)}  # one unit an image
    return Reply(200, result_body(job, base), {**billed, **_ids(job)})


def cancel_reply(job: Job) -> Reply:
    """400 once COMPLETED; otherwise the caller cancels and answers 202."""
    if job.state is JobState.COMPLETED:
        return Reply(400, {"status": "ALREADY_COMPLETED"}, _ids(job))
    return Reply(202, {"status": "CANCELLATION_REQUESTED"}, _ids(job))


def model_error(
    status_code: int | None,
    error_type: str | None,
    body: object,
    headers: dict[str, str],
) -> JobError:
    """The failure a ``model_error`` fault gives a job (default 503 runner_disconnected)."""
    kind = error_type or "runner_disconnected"
    code = status_code or 503
    message = ERROR_MESSAGES.get(kind, kind.replace("_", " ").capitalize())
    if isinstance(body, dict):
        given = body.get("detail")
        if isinstance(given, str):
            message = given
        payload = dict(body)
    else:
        payload = {"detail": message, "error_type": kind}
    return JobError(
        status_code=code,
        body=payload,
        error=message,
        error_type=kind,
        headers={"X-Fal-Error-Type": kind, **headers},
    )
