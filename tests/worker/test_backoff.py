"""Backoff numbers: pure functions, checked with numbers."""

from typing import Any

import pytest

from models.status import GenerationStatus
from worker.backoff import (
    BackoffPolicy,
    RunTimeEstimate,
    next_error_delay,
    next_poll_delay,
    safety_net_delay,
)
from worker.lifecycle.estimates import estimate_from, quantile

NO_JITTER = BackoffPolicy(min_delay=0.5, max_delay=10.0, growth=2.0, jitter=0.0)


def poll(attempt: int, **kw: Any) -> float:
    args: dict[str, Any] = {
        "state": GenerationStatus.RUNNING,
        "queue_position": None,
        "age": 0.0,
        "policy": NO_JITTER,
        "rand": 0.5,
    }
    return next_poll_delay(attempt=attempt, **{**args, **kw})


def test_geometric_growth_capped_at_max() -> None:
    assert [poll(a) for a in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_queue_position_stretches_the_wait_but_not_past_max() -> None:
    assert poll(0, state=GenerationStatus.QUEUED, queue_position=8) == 2.0  # 8 × 0.25 s
    assert poll(0, state=GenerationStatus.QUEUED, queue_position=1000) == 10.0
    assert poll(3, state=GenerationStatus.QUEUED, queue_position=1) == 4.0  # growth already longer


def test_jitter_stays_within_its_band() -> None:
    policy = BackoffPolicy(min_delay=1.0, growth=1.0, jitter=0.2)
    low = next_poll_delay(
        attempt=0,
        state=GenerationStatus.RUNNING,
        queue_position=None,
        age=0,
        policy=policy,
        rand=0.0,
    )
    high = next_poll_delay(
        attempt=0,
        state=GenerationStatus.RUNNING,
        queue_position=None,
        age=0,
        policy=policy,
        rand=0.999999,
    )
    assert low == pytest.approx(0.8)
    assert high == pytest.approx(1.2, abs=1e-5)


ESTIMATE = RunTimeEstimate(p10=58.0, p50=60.0, p90=66.0, samples=50)


def test_with_history_sleep_until_the_earliest_likely_finish() -> None:
    assert poll(1, age=2.0, estimate=ESTIMATE) == pytest.approx(56.0)


def test_inside_the_window_poll_densely() -> None:
    assert poll(9, age=59.0, estimate=ESTIMATE) == 1.0  # (66-58)/8 = 1.0, ≤ dense_max_delay
    narrow = RunTimeEstimate(p10=60, p50=60, p90=60.5, samples=50)
    assert poll(9, age=60.2, estimate=narrow) == 0.5  # never below min_delay


def test_past_the_window_back_off_again() -> None:
    assert poll(12, age=70.0, estimate=ESTIMATE) == 2.0  # half the overdue time
    assert poll(12, age=200.0, estimate=ESTIMATE) == 10.0


def test_too_few_samples_means_no_estimate() -> None:
    few = RunTimeEstimate(p10=58, p50=60, p90=66, samples=4)
    assert poll(2, age=2.0, estimate=few) == 2.0


def test_sixty_second_jobs_take_few_polls_with_history() -> None:
    """The B2 shape: a 60 s job, a learned estimate; count polls and detection lag."""
    policy = BackoffPolicy(min_delay=0.5, max_delay=10.0, jitter=0.0)
    estimate = RunTimeEstimate(p10=60.0, p50=60.3, p90=61.0, samples=100)
    finish, age, polls = 60.2, 0.0, 0
    while True:
        age += next_poll_delay(
            attempt=polls,
            state=GenerationStatus.RUNNING,
            queue_position=None,
            age=age,
            policy=policy,
            rand=0.5,
            estimate=estimate,
        )
        polls += 1
        if age >= finish:
            break
    assert polls <= 5
    assert age - finish <= 0.5


def _walk(finish: float, **kw: Any) -> tuple[int, float]:
    """Status calls until one sees a job that ends at ``finish`` (the first at the submit's
    own delay, as the worker does), and how late that call comes."""
    policy = kw.pop("policy", BackoffPolicy(min_delay=0.5, max_delay=10.0, jitter=0.0))
    age, polls = 0.0, 0
    while age < finish:
        age += next_poll_delay(
            attempt=polls,
            state=GenerationStatus.RUNNING,
            queue_position=None,
            age=age,
            policy=policy,
            rand=kw.get("rand", 0.5),
            **{k: v for k, v in kw.items() if k != "rand"},
        )
        polls += 1
    return polls, age - finish


def test_a_cold_model_polls_around_its_catalogue_run_time() -> None:
    """No history yet, the catalogue says 30 s: sleep toward 0.6 × 30 = 18 s (at most
    max_delay at a time), then every 1.5 s until 1.5 × 30 = 45 s."""
    assert poll(0, age=0.0, prior=30.0) == 10.0  # no sleep on a guess longer than max_delay
    assert poll(1, age=10.0, prior=30.0) == 8.0
    assert poll(2, age=18.0, prior=30.0) == 1.5  # (45-18)/8 = 3.4 s, capped at 1.5 s
    assert poll(9, age=50.0, prior=30.0) == 2.5  # past the window: half the overdue time
    polls, late = _walk(30.0, prior=30.0)
    assert polls <= 12
    assert late <= 1.5
    without = _walk(30.0)
    assert without[1] > 3 * late  # today's cold start: geometric up to 10 s
    assert polls <= without[0] + 2


def test_a_prior_that_is_wrong_costs_at_most_the_cold_schedule() -> None:
    # A model that runs four times longer than its catalogue says: past the window the gaps
    # grow as without a prior, never beyond max_delay; the window's calls were spent in vain.
    polls, late = _walk(120.0, prior=30.0)
    assert late <= 10.0
    assert polls <= 2 * _walk(120.0)[0]
    # … and one that runs far shorter is found within max_delay of its submit.
    assert _walk(2.0, prior=300.0) == (1, 8.0)


def test_a_job_waiting_in_upstreams_queue_ignores_the_prior() -> None:
    """Its run has not begun: the queue position, not the run time, says when to look."""
    queued = GenerationStatus.QUEUED
    assert poll(0, state=queued, queue_position=8, age=1.0, prior=30.0) == 2.0
    assert poll(0, state=queued, queue_position=0, age=1.0, prior=30.0) == 10.0
    learned = RunTimeEstimate(p10=20.0, p50=30.0, p90=40.0, samples=5)
    assert poll(0, age=1.0, estimate=learned, prior=300.0) == 19.0  # history wins


def test_error_delay_doubles_and_honours_retry_after() -> None:
    policy = BackoffPolicy(error_min_delay=1.0, error_max_delay=60.0, jitter=0.0)
    delays = [
        next_error_delay(errors=n, retry_after=None, policy=policy, rand=0.5) for n in range(1, 9)
    ]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert next_error_delay(errors=1, retry_after=7.0, policy=policy, rand=0.5) == 7.0
    assert next_error_delay(errors=5, retry_after=2.0, policy=policy, rand=0.5) == 16.0
    assert next_error_delay(errors=1, retry_after=1e9, policy=policy, rand=0.5) == 600.0


def test_quantiles_and_estimates() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    est = estimate_from([float(x) for x in range(1, 101)])
    assert est is not None
    assert (est.p10, est.p50, est.p90, est.samples) == (11.0, 51.0, 90.0, 100)
    assert estimate_from([]) is None


NET = BackoffPolicy(min_delay=0.5, jitter=0.0, webhook_margin=15.0, webhook_interval=60.0)


def net(age: float, estimate: RunTimeEstimate | None = None, **kw: Any) -> float:
    return safety_net_delay(
        age=age, policy=kw.pop("policy", NET), rand=0.5, estimate=estimate, **kw
    )


def test_a_webhook_job_is_first_checked_past_its_likely_finish() -> None:
    learned = RunTimeEstimate(p10=50.0, p50=60.0, p90=70.0, samples=20)
    assert net(0.0, learned) == 85.0  # p90 70 s + margin 15 s
    assert net(80.0, learned) == 5.0
    assert net(85.0, learned) == 60.0  # then sparse


def test_without_history_a_webhook_job_is_checked_every_interval() -> None:
    few = RunTimeEstimate(p10=1.0, p50=2.0, p90=3.0, samples=2)
    assert net(0.0) == net(0.0, few) == 60.0
    assert net(60.0) == net(200.0) == 60.0


def test_without_history_a_webhook_job_is_first_checked_past_its_catalogue_run_time() -> None:
    # a 6 s image model: its lost webhook is looked for at 6 × 1.5 + 15 s, not after a minute
    assert net(0.0, prior=6.0) == 24.0
    assert net(20.0, prior=6.0) == 4.0
    assert net(24.0, prior=6.0) == 60.0  # then sparse
    # a 300 s video model is not checked five times before it can have finished
    assert net(0.0, prior=300.0) == 465.0
    # history wins over the prior
    learned = RunTimeEstimate(p10=50.0, p50=60.0, p90=70.0, samples=20)
    assert net(0.0, learned, prior=300.0) == 85.0


def test_safety_net_jitter_only_ever_delays() -> None:
    policy = BackoffPolicy(min_delay=0.5, jitter=0.2, webhook_margin=15.0, webhook_interval=60.0)
    low = safety_net_delay(age=0.0, policy=policy, rand=0.0)
    high = safety_net_delay(age=0.0, policy=policy, rand=0.999)
    assert low == 60.0
    assert 60.0 < high <= 72.0
    assert safety_net_delay(age=59.9, policy=policy, rand=0.0) == 0.5  # min_delay floor
    learned = RunTimeEstimate(p10=50.0, p50=60.0, p90=70.0, samples=20)
    late = safety_net_delay(age=0.0, policy=policy, rand=0.999, estimate=learned)
    assert 85.0 < late <= 88.0  # p90 + margin, plus at most a fifth of the margin
