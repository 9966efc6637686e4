"""A simulated request (job) and the ways it can end."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from simulator.validation import GenParams


class JobState(StrEnum):
    """fal queue states; a failed or cancelled job is COMPLETED too."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class Outcome(StrEnum):
    """How a COMPLETED job ended."""

    OK = "ok"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class JobError:
    """A failed job's result response (status code, JSON body, headers) and status fields."""

    status_code: int
    body: dict[str, Any]
    error: str
    error_type: str
    headers: dict[str, str] = field(default_factory=dict)
    outcome: Outcome = Outcome.ERROR

    @classmethod
    def infra(
        cls,
        status_code: int,
        error_type: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        outcome: Outcome = Outcome.ERROR,
    ) -> "JobError":
        """A flat ``{"detail", "error_type"}`` error with ``X-Fal-Error-Type`` (UPSTREAM §8B)."""
        return cls(
            status_code=status_code,
            body={"detail": detail, "error_type": error_type},
            error=detail,
            error_type=error_type,
            headers={"X-Fal-Error-Type": error_type, **(headers or {})},
            outcome=outcome,
        )

    @classmethod
    def validation(cls, detail: list[dict[str, Any]]) -> "JobError":
        """A deferred 422: the pydantic ``detail`` list, billed as 0 units."""
        return cls(
            status_code=422,
            body={"detail": detail},
            error="Invalid status code: 422",
            error_type="validation_error",
            headers={"x-fal-billable-units": "0"},
        )


CANCELLED = JobError.infra(
    499, "client_cancelled", "Request cancelled by client", outcome=Outcome.CANCELLED
)
TIMED_OUT = JobError.infra(
    504, "request_timeout", "Request timed out", headers={"X-Fal-Request-Timeout-Type": "user"}
)

#: Messages for model failures, by error_type (UPSTREAM.md §8B).
ERROR_MESSAGES = {
    "runner_disconnected": "Runner disconnected",
    "runner_connection_error": "Runner connection error",
    "runner_connection_timeout": "Runner connection timed out",
    "runner_connection_refused": "Runner connection refused",
    "runner_scheduling_failure": "Runner scheduling failure",
    "runner_incomplete_response": "Runner returned an incomplete response",
    "runner_server_error": "Runner server error",
    "internal_error": "Internal error",
    "internal_server_error": "Internal server error",
    "generation_timeout": "Generation timed out",
    "startup_timeout": "Startup timed out",
    "request_timeout": "Request timed out",
    "content_policy_violation": (
        "The content could not be processed because it contained material flagged by a "
        "content checker."
    ),
    "downstream_service_error": "Downstream service error",
    "downstream_service_unavailable": "Downstream service unavailable",
}


@dataclass(slots=True, eq=False)
class Job:
    """One submitted request. Times are on the simulator's monotonic clock."""

    request_id: str
    endpoint: str
    app: str
    body: Any
    params: GenParams
    seed: int
    submitted: float
    base_url: str = ""
    seq: int = -1
    deadline: float | None = None
    webhook_url: str | None = None
    started: float | None = None
    ended: float | None = None
    end_due: float | None = None
    error: JobError | None = None
    #: Planned failure applied when the job finishes its run (model error, deferred 422).
    fail_with: JobError | None = None
    cancel_requested: bool = False
    result_expired: bool = False
    duplicate_webhook: bool = False
    calls: dict[str, int] = field(
        default_factory=lambda: {"submit": 1, "status": 0, "result": 0, "cancel": 0}
    )
    #: Every counted call on this job, oldest first: ``(op, caller address, clock time)``.
    call_log: list[tuple[str, str | None, float]] = field(default_factory=list)

    @property
    def state(self) -> JobState:
        if self.ended is not None:
            return JobState.COMPLETED
        if self.started is not None:
            return JobState.IN_PROGRESS
        return JobState.IN_QUEUE

    @property
    def outcome(self) -> Outcome | None:
        if self.ended is None:
            return None
        return self.error.outcome if self.error is not None else Outcome.OK

    @property
    def inference_time(self) -> float | None:
        """Seconds the job ran, when it ran to its end (not cancelled or timed out)."""
        if self.started is None or self.ended is None or self.end_due != self.ended:
            return None
        return self.ended - self.started
