"""The worker's limits and backoff policy come from the settings, whose defaults they share."""

import dataclasses

from models.settings import Settings
from worker.backoff import BackoffPolicy
from worker.context import Limits


def test_the_defaults_are_the_settings_defaults() -> None:
    defaults = Settings.model_construct()  # the class's defaults, no environment read
    assert Limits() == Limits.from_settings(defaults)
    assert BackoffPolicy() == BackoffPolicy.from_settings(defaults)


def test_limits_and_policy_are_read_from_the_settings() -> None:
    settings = Settings(
        max_submit_attempts=3,
        max_poll_errors=7,
        deadline_grace=3.5,
        max_in_flight=11,
        lease_seconds=12.5,
        submit_grace=2.5,
        poll_batch_size=9,
        submit_batch_size=4,
        dispatch_limit=99,
        retention_days=30.0,
        upstream_start_timeout=30.0,
        upstream_webhook_url="https://gq.example.com/webhooks/fal",
        webhook_poll_margin=7.5,
        webhook_poll_interval=45.0,
        webhook_timeout=2.5,
        webhook_concurrency=6,
        webhook_per_destination=2,
        webhook_retry_schedule=(1.0, 60.0),
        ambiguous_submit="fail",
        media_max_bytes=5000,
        media_deadline=60.0,
        media_timeout=9.0,
        media_concurrency=3,
        media_retention_days=7.0,
        media_wait=12.0,
        poll_min_delay=0.25,
        poll_max_delay=4.0,
        poll_jitter=0.0,
        error_min_delay=2.0,
        error_max_delay=20.0,
    )
    assert dataclasses.asdict(Limits.from_settings(settings)) == {
        "max_submit_attempts": 3,
        "max_poll_errors": 7,
        "deadline_grace": 3.5,
        "max_in_flight": 11,
        "lease_seconds": 12.5,
        "submit_grace": 2.5,
        "poll_batch_size": 9,
        "submit_batch_size": 4,
        "dispatch_limit": 99,
        "retention_days": 30.0,
        "start_timeout": 30.0,
        "webhook_url": "https://gq.example.com/webhooks/fal",
        "webhook_timeout": 2.5,
        "webhook_concurrency": 6,
        "webhook_per_destination": 2,
        "webhook_retry_schedule": (1.0, 60.0),
        "ambiguous_submit": "fail",
        "media_max_bytes": 5000,
        "media_deadline": 60.0,
        "media_timeout": 9.0,
        "media_concurrency": 3,
        "media_retention_days": 7.0,
        "media_wait": 12.0,
        "poll_threads": Limits().poll_threads,
    }
    policy = BackoffPolicy.from_settings(settings)
    assert (
        policy.min_delay,
        policy.max_delay,
        policy.jitter,
        policy.error_min_delay,
        policy.error_max_delay,
        policy.webhook_margin,
        policy.webhook_interval,
    ) == (0.25, 4.0, 0.0, 2.0, 20.0, 7.5, 45.0)
    assert policy.growth == BackoffPolicy().growth  # not a setting


def test_a_test_still_builds_limits_directly() -> None:
    limits = Limits(lease_seconds=5.0, ambiguous_submit="fail")
    assert (limits.lease_seconds, limits.ambiguous_submit) == (5.0, "fail")
    assert limits.max_submit_attempts == Settings.model_fields["max_submit_attempts"].default
