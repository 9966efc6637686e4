"""Admitting a submit: start-deadline header, input validation, submit-time faults."""

import math
import random
import uuid
from typing import Any

from simulator import answers
from simulator.calls import Call, auth_scheme, auth_sha256
from simulator.config import SimulatorConfig
from simulator.faults import ACCEPT_KINDS, FaultBook, FaultRule
from simulator.jobs import Job, JobError
from simulator.replies import Reply
from simulator.validation import check_input

TIMEOUT_HEADER = "x-fal-request-timeout"


def admit(
    call: Call,
    body: Any,
    parse_errors: list[dict[str, Any]] | None,
    *,
    config: SimulatorConfig,
    now: float,
    rng: random.Random,
    faults: FaultBook,
) -> tuple[Job | None, Reply]:
    """The new job (not yet queued) and a 200 reply to fill in, or None and the rejection."""
    endpoint = call.endpoint or call.app
    timeout = _request_timeout(call.headers.get(TIMEOUT_HEADER))
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        error = JobError.infra(400, "bad_request", "Invalid X-Fal-Request-Timeout header")
        return None, Reply(400, error.body, error.headers)
    params, errors = check_input(endpoint, body)
    errors = parse_errors or errors
    if parse_errors or (errors and config.validate == "submit"):
        return None, Reply(422, {"detail": errors})
    job = Job(
        request_id=str(uuid.uuid4()),
        endpoint=endpoint,
        app=call.app,
        body=body,
        params=params,
        seed=params.seed if params.seed is not None else rng.randrange(1, 2**31),
        submitted=now,
        base_url=config.public_url or call.base_url,
        deadline=None if timeout is None else now + timeout,
        webhook_url=call.query.get("fal_webhook") or None,
    )
    if errors and config.validate == "result":
        job.fail_with = JobError.validation(errors)
    reply = Reply(200, headers={answers.REQUEST_ID_HEADER: job.request_id})
    for kind in sorted(ACCEPT_KINDS):
        rule = faults.take("submit", frozenset({kind}), params.prompt)
        if rule is not None:
            _apply(rule, job, reply)
    return job, reply


def submit_record(
    call: Call, body: Any, request_id: str | None, status_code: int, at: float
) -> dict[str, Any]:
    """What ``submits()`` keeps of one submit: never the Authorization value itself."""
    return {
        "request_id": request_id,
        "endpoint": call.endpoint or call.app,
        "body": body,
        "auth_scheme": auth_scheme(call.authorization),
        "auth_sha256": auth_sha256(call.authorization),
        "status_code": status_code,
        "at": at,
        "priority": call.headers.get("x-fal-queue-priority"),
        "tags": call.headers.get("x-fal-tags"),
        "caller": call.caller,
    }


def _request_timeout(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return math.nan


def _apply(rule: FaultRule, job: Job, reply: Reply) -> None:
    if rule.kind == "model_error" and job.fail_with is None:
        job.fail_with = answers.model_error(
            rule.status_code, rule.error_type, rule.body, rule.headers
        )
    elif rule.kind == "expire_result":
        job.result_expired = True
    elif rule.kind == "duplicate_webhook":
        job.duplicate_webhook = True
    elif rule.kind == "accept_then_reset":
        reply.action, reply.label, reply.delay = "reset", "accept_then_reset", rule.hold_seconds
    elif rule.kind == "accept_then_hang":
        reply.label, reply.delay = "accept_then_hang", rule.hold_seconds
