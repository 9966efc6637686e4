"""Retries like Svix's: a schedule (configurable), Retry-After honoured on 429/503, 410 stops,
any 2xx is success and 3xx is not."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.destinations import AddressPolicy
from models.settings import Settings
from models.tables import Generation
from tests.support.receiver import webhook_receiver
from tests.worker.webhook_support import ended_jobs, webhook_ctx, webhook_events
from worker.context import Limits
from worker.lifecycle.webhook_http import WebhookHttp
from worker.lifecycle.webhook_retry import SVIX_SCHEDULE, retry_delay
from worker.lifecycle.webhooks import deliver_webhooks

PRIVATE_OK = AddressPolicy(allow_private=True)


@pytest.fixture(autouse=True)
def nothing_due(private_sessions: sessionmaker[Session]) -> None:
    """``deliver_webhooks`` takes every due delivery of the database, and the tests of this
    module share one: each starts with no delivery another left (a retry 5 s away falls due
    while later tests run, and its try at a closed receiver was counted as theirs)."""
    with private_sessions.begin() as session:
        session.execute(
            update(Generation)
            .where(
                Generation.webhook_url.is_not(None),
                Generation.webhook_delivered_at.is_(None),
                Generation.webhook_stopped_at.is_(None),
            )
            .values(webhook_stopped_at=datetime.now(UTC))
        )


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, None, 5.0),  # the first retry: 5 s after the first attempt
        (2, None, 300.0),
        (3, None, 1800.0),
        (4, None, 7200.0),
        (5, None, 18000.0),
        (6, None, 36000.0),
        (7, None, 36000.0),
        (8, None, None),  # eight attempts in all, then abandoned
        (1, 120.0, 120.0),  # Retry-After beyond the schedule is waited for
        (2, 1.0, 300.0),  # … and never makes a retry sooner than the schedule
    ],
)
def test_the_schedule(attempt: int, retry_after: float | None, expected: float | None) -> None:
    assert retry_delay(attempt, SVIX_SCHEDULE, retry_after=retry_after) == expected


def test_the_schedule_is_the_default_setting_and_configurable() -> None:
    assert Settings().webhook_retry_schedule == SVIX_SCHEDULE
    assert Settings(webhook_retry_schedule="1, 2").webhook_retry_schedule == (1.0, 2.0)
    assert retry_delay(3, (1.0, 2.0)) is None


def _generation(sessions: sessionmaker[Session], gen_id: object) -> Generation:
    with sessions() as session:
        gen = session.get(Generation, gen_id)
        assert gen is not None
        return gen


def test_410_stops_the_delivery(sessions: sessionmaker[Session]) -> None:
    ctx = webhook_ctx(sessions, Limits(webhook_retry_schedule=(0.0, 0.0)))
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        [gen_id] = ended_jobs(ctx, hook.url)
        hook.answers = [410]
        assert deliver_webhooks(ctx, http.send) == {"gone": 1}
        assert deliver_webhooks(ctx, http.send) == {}  # due at once were it retried
        assert len(hook.received) == 1
    gen = _generation(sessions, gen_id)
    assert gen.webhook_stopped_at is not None
    assert [kind for kind, _ in webhook_events(ctx, gen_id)] == ["webhook_gone"]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(sessions: sessionmaker[Session], status: int) -> None:
    ctx = webhook_ctx(sessions)
    later = datetime.now(UTC) + timedelta(seconds=600)
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        [seconds] = ended_jobs(ctx, hook.url)
        hook.answers = [(status, {"Retry-After": "120"})]
        before = datetime.now(UTC)
        assert deliver_webhooks(ctx, http.send) == {"failed": 1}
        [dated] = ended_jobs(ctx, hook.url)
        hook.answers = [(status, {"Retry-After": format_datetime(later, usegmt=True)})]
        assert deliver_webhooks(ctx, http.send) == {"failed": 1}
    next_at = _generation(sessions, seconds).webhook_next_at
    assert next_at is not None
    assert before + timedelta(seconds=119) <= next_at <= datetime.now(UTC) + timedelta(seconds=121)
    dated_at = _generation(sessions, dated).webhook_next_at
    assert dated_at is not None
    assert later - timedelta(seconds=2) <= dated_at <= later + timedelta(seconds=2)


def test_retry_after_on_another_status_is_not_taken(sessions: sessionmaker[Session]) -> None:
    ctx = webhook_ctx(sessions)
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        [gen_id] = ended_jobs(ctx, hook.url)
        hook.answers = [(500, {"Retry-After": "3600"})]
        before = datetime.now(UTC)
        deliver_webhooks(ctx, http.send)
    next_at = _generation(sessions, gen_id).webhook_next_at
    assert next_at is not None
    assert next_at <= before + timedelta(seconds=SVIX_SCHEDULE[0] + 5)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, "delivered"), (204, "delivered"), (299, "delivered"), (304, "failed")],
)
def test_any_2xx_is_success_and_3xx_is_not(
    private_sessions: sessionmaker[Session], status: int, outcome: str
) -> None:
    ctx = webhook_ctx(private_sessions)
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        ended_jobs(ctx, hook.url)
        hook.answers = [status]
        assert deliver_webhooks(ctx, http.send) == {outcome: 1}
