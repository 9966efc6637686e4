"""The worker's limits and backoff policy come from the settings, whose defaults they share."""

import dataclasses
from datetime import timedelta
from pathlib import Path

from celery import Celery
from sqlalchemy import text

from models.dbclock import DatabaseClock
from models.settings import Settings
from worker.backoff import BackoffPolicy
from worker.context import Limits
from worker.runtime import build_context


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
        media_nice=4,
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
        "media_nice": 4,
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


def test_the_worker_reads_the_database_clock(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=pg_url, data_dir=str(tmp_path), upstream_url="http://127.0.0.1:9"
    )
    ctx = build_context(settings, Celery(set_as_current=False))
    try:
        assert isinstance(ctx.clock, DatabaseClock)
        engine = ctx.sessions.kw["bind"]
        with engine.connect() as conn:
            before = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        read = ctx.clock()
        assert before <= read + timedelta(milliseconds=500)
        assert read - before < timedelta(seconds=2)
    finally:
        ctx.client.close()
        if ctx.media_http is not None:
            ctx.media_http.close()
        ctx.sessions.kw["bind"].dispose()
