"""The generation state machine: statuses and the transitions allowed between them."""

from enum import StrEnum


class GenerationStatus(StrEnum):
    PENDING = "pending"
    """Stored, not yet sent upstream (waiting for a worker or for upstream capacity)."""
    SUBMITTING = "submitting"
    """A worker owns the submit; its outcome is not recorded yet."""
    QUEUED = "queued"
    """Upstream says IN_QUEUE; ``queue_position`` is upstream's."""
    RUNNING = "running"
    """Upstream says IN_PROGRESS."""
    COMPLETED = "completed"
    """Result fetched and stored (terminal)."""
    FAILED = "failed"
    """Permanent error, deadline passed or retries exhausted; ``error`` says which (terminal)."""
    CANCELLED = "cancelled"
    """Cancelled before it ran, or upstream honoured the cancel (terminal)."""


S = GenerationStatus

TERMINAL: frozenset[GenerationStatus] = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
ACTIVE: frozenset[GenerationStatus] = frozenset({S.QUEUED, S.RUNNING})

# to-state -> the states it may be entered from
ALLOWED_FROM: dict[GenerationStatus, frozenset[GenerationStatus]] = {
    S.PENDING: frozenset({S.SUBMITTING}),  # nothing sent, or an ambiguous submit to be retried
    S.SUBMITTING: frozenset({S.PENDING}),
    S.QUEUED: frozenset({S.SUBMITTING, S.QUEUED, S.RUNNING}),  # fal can requeue after a runner dies
    S.RUNNING: frozenset({S.SUBMITTING, S.QUEUED, S.RUNNING}),
    S.COMPLETED: frozenset({S.SUBMITTING, S.QUEUED, S.RUNNING}),
    S.FAILED: frozenset({S.PENDING, S.SUBMITTING, S.QUEUED, S.RUNNING}),
    S.CANCELLED: frozenset({S.PENDING, S.SUBMITTING, S.QUEUED, S.RUNNING}),
}


def can_transition(src: GenerationStatus, dst: GenerationStatus) -> bool:
    return src in ALLOWED_FROM[dst]
