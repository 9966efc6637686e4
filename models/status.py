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


TERMINAL: frozenset[GenerationStatus] = frozenset(
    {GenerationStatus.COMPLETED, GenerationStatus.FAILED, GenerationStatus.CANCELLED}
)
"""Nothing changes a generation any more (but its webhook delivery)."""
LIVE: frozenset[GenerationStatus] = frozenset(
    {GenerationStatus.SUBMITTING, GenerationStatus.QUEUED, GenerationStatus.RUNNING}
)
"""Sent upstream, or on its way there: what ``max_in_flight`` counts and a cancel must reach."""
ACTIVE: frozenset[GenerationStatus] = frozenset({GenerationStatus.QUEUED, GenerationStatus.RUNNING})
"""Upstream has it and we know its request id: what the poller checks."""
WAITING: frozenset[GenerationStatus] = frozenset(
    {GenerationStatus.PENDING, GenerationStatus.SUBMITTING}
)
"""Not accepted upstream yet: what a waiting client counts as ahead of it."""

# to-state -> the states it may be entered from
ALLOWED_FROM: dict[GenerationStatus, frozenset[GenerationStatus]] = {
    # nothing sent, or an ambiguous submit to be retried
    GenerationStatus.PENDING: frozenset({GenerationStatus.SUBMITTING}),
    GenerationStatus.SUBMITTING: frozenset({GenerationStatus.PENDING}),
    GenerationStatus.QUEUED: LIVE,  # fal can requeue after a runner dies
    GenerationStatus.RUNNING: LIVE,
    GenerationStatus.COMPLETED: LIVE,
    GenerationStatus.FAILED: LIVE | {GenerationStatus.PENDING},
    GenerationStatus.CANCELLED: LIVE | {GenerationStatus.PENDING},
}
