"""When to look at a job again: pure functions of its state, tested with numbers.

Polling spends upstream calls; waiting spends detection lag. Once a model has finished enough
jobs, the run-time estimate lets a job sleep until the earliest likely finish, poll densely
across the likely window, and fall back to geometric growth past it, so the calls cluster where
the finish is. Before that (a new model, a fresh database) the catalogue's expected run time is
the prior: the same schedule over a wider window around it (``prior_window``). With neither,
polls grow geometrically from ``min_delay`` to ``max_delay``.
"""

from dataclasses import dataclass

from models.settings import Settings, from_setting, setting_values
from models.status import GenerationStatus


@dataclass(frozen=True)
class BackoffPolicy:
    """``from_settings`` in a worker; tests build one directly (the defaults are the settings')."""

    min_delay: float = from_setting("poll_min_delay")
    max_delay: float = from_setting("poll_max_delay")
    growth: float = 1.6
    jitter: float = from_setting("poll_jitter")
    error_min_delay: float = from_setting("error_min_delay")
    error_max_delay: float = from_setting("error_max_delay")
    per_queue_position: float = 0.25
    """Extra seconds of wait per job ahead in the upstream queue (capped by ``max_delay``)."""
    dense_max_delay: float = 1.0
    """Longest gap between polls inside the likely-finish window."""
    max_estimated_sleep: float = 300.0
    min_samples: int = 5
    prior_low: float = 0.6
    prior_high: float = 1.5
    """Without enough history, the likely window is ``prior_low``–``prior_high`` × the
    catalogue's expected run time: a prior is a guess, so wider than a learned p10–p90."""
    prior_dense_delay: float = 1.5
    """Longest gap between polls inside the prior's window: what keeps a 30 s job at ≤ 12
    status calls (a learned window is narrower and polled every ``dense_max_delay``)."""
    webhook_margin: float = from_setting("webhook_poll_margin")
    """Jobs expecting a webhook: their first status check waits this long past the likely
    finish (the model's p90 run time)."""
    webhook_interval: float = from_setting("webhook_poll_interval")
    """… and then comes every this many seconds (also the first, without run-time history)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "BackoffPolicy":
        return cls(**setting_values(cls, settings))


@dataclass(frozen=True)
class RunTimeEstimate:
    """Seconds from upstream accept to COMPLETED for a model's recently finished jobs."""

    p10: float
    p50: float
    p90: float
    samples: int


def prior_window(expected_run_seconds: float, policy: BackoffPolicy) -> RunTimeEstimate:
    """The likely window of a model known only by its catalogue run time."""
    return RunTimeEstimate(
        p10=expected_run_seconds * policy.prior_low,
        p50=expected_run_seconds,
        p90=expected_run_seconds * policy.prior_high,
        samples=0,
    )


def _jittered(delay: float, policy: BackoffPolicy, rand: float) -> float:
    return max(0.05, delay * (1.0 + policy.jitter * (2.0 * rand - 1.0)))


def next_poll_delay(
    *,
    attempt: int,
    state: GenerationStatus,
    queue_position: int | None,
    age: float,
    policy: BackoffPolicy,
    rand: float,
    estimate: RunTimeEstimate | None = None,
    prior: float | None = None,
) -> float:
    """Seconds until the next status call.

    ``attempt`` counts the polls made so far, ``age`` is seconds since upstream accepted the job,
    ``rand`` is a uniform number in [0, 1) supplied by the caller (so this stays pure).
    ``estimate`` is the model's learned run time; ``prior`` its catalogue run time, used while
    the estimate has fewer than ``min_samples`` jobs (and the job is not waiting in upstream's
    queue, where its run has not begun).
    """
    geometric = min(policy.max_delay, policy.min_delay * policy.growth ** max(attempt, 0))
    waiting = state is GenerationStatus.QUEUED and bool(queue_position)
    if waiting:
        geometric = min(
            policy.max_delay, max(geometric, (queue_position or 0) * policy.per_queue_position)
        )
    dense_max, max_sleep = policy.dense_max_delay, policy.max_estimated_sleep
    if estimate is None or estimate.samples < policy.min_samples:
        if prior is None or prior <= 0 or waiting:
            return _jittered(geometric, policy, rand)
        # A prior is a guess: no sleep on it is longer than the longest gap without one.
        estimate = prior_window(prior, policy)
        dense_max, max_sleep = policy.prior_dense_delay, policy.max_delay
    if age < estimate.p10:
        # Nothing of this model finished this early lately: sleep until the window opens.
        until_window = min(estimate.p10 - age, max_sleep)
        return max(policy.min_delay, until_window * (1.0 - policy.jitter * rand))
    if age <= estimate.p90:
        spread = (estimate.p90 - estimate.p10) / 8.0
        dense = min(dense_max, max(policy.min_delay, spread))
        return _jittered(dense, policy, rand)
    overdue = age - estimate.p90
    late = min(policy.max_delay, max(policy.min_delay, overdue * 0.5))
    return _jittered(late, policy, rand)


def safety_net_delay(
    *,
    age: float,
    policy: BackoffPolicy,
    rand: float,
    estimate: RunTimeEstimate | None = None,
    prior: float | None = None,
) -> float:
    """Seconds until the next status call of a job that expects fal's webhook.

    The webhook settles it; polls only find a webhook that was lost. The first comes at the
    likely finish plus a margin: ``p90 + webhook_margin`` from the learned run times; without
    enough history, the end of the catalogue prior's window (``prior × prior_high``) plus the
    margin; with neither, ``webhook_interval``. The next ones come every ``webhook_interval``.
    Jitter only ever delays, and the first check's only by a share of the margin, so a lost
    webhook is found at most ``max(first + webhook_margin × jitter, webhook_interval × (1 +
    jitter))`` after submit, or ``webhook_interval × (1 + jitter)`` after the job ended if that
    is later.
    """
    if estimate is not None and estimate.samples >= policy.min_samples:
        first, spread = estimate.p90 + policy.webhook_margin, policy.webhook_margin
    elif prior is not None and prior > 0:
        first = prior * policy.prior_high + policy.webhook_margin
        spread = policy.webhook_margin
    else:
        first, spread = policy.webhook_interval, policy.webhook_interval
    if age < first:
        # never earlier than planned: the jitter spreads the checks later, by a share of the
        # margin (not of the whole wait, which would push a 60 s model's check 15 s further)
        return max(policy.min_delay, first - age + spread * policy.jitter * rand)
    return _jittered(policy.webhook_interval, policy, rand)


def next_error_delay(
    *, errors: int, retry_after: float | None, policy: BackoffPolicy, rand: float
) -> float:
    """Seconds until retrying after a transient failure; ``Retry-After`` wins when it is longer."""
    delay = min(policy.error_max_delay, policy.error_min_delay * 2.0 ** max(errors - 1, 0))
    delay = _jittered(delay, policy, rand)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.error_max_delay * 10))
    return delay
