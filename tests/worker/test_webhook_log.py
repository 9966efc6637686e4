"""Every attempt is a row of the delivery log (time, destination, status or error, duration,
the first KiB of the answer); a redelivery sends the final payload again as a new attempt."""

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.deliveries import Redelivery, attempts_of, schedule_redelivery
from models.destinations import AddressPolicy
from models.tables import Generation
from tests.support.receiver import webhook_receiver
from tests.worker.webhook_support import ended_jobs, webhook_ctx
from worker.lifecycle.webhook_http import WebhookHttp
from worker.lifecycle.webhook_sign import message_id
from worker.lifecycle.webhooks import deliver_webhooks

PRIVATE_OK = AddressPolicy(allow_private=True)


def test_each_attempt_is_logged_and_a_redelivery_is_one_more(
    sessions: sessionmaker[Session],
) -> None:
    ctx = webhook_ctx(sessions)
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        [gen_id] = ended_jobs(ctx, hook.url)
        hook.answers = [500]
        hook.answer_body = b"oops " * 500
        assert deliver_webhooks(ctx, http.send) == {"failed": 1}
        with ctx.sessions.begin() as session:  # the retry is due now
            session.execute(
                update(Generation)
                .where(Generation.id == gen_id)
                .values(webhook_next_at=datetime.now(UTC))
            )
        hook.answer_body = b"thanks"
        assert deliver_webhooks(ctx, http.send) == {"delivered": 1}
        assert deliver_webhooks(ctx, http.send) == {}

        with ctx.sessions.begin() as session:
            assert schedule_redelivery(session, gen_id, now=datetime.now(UTC)) == (
                Redelivery.SCHEDULED
            )
        assert deliver_webhooks(ctx, http.send) == {"delivered": 1}
        bodies = [c["body"] for c in hook.received]
        assert bodies[0] == bodies[1] == bodies[2]
        assert {c["headers"]["webhook-id"] for c in hook.received} == {message_id(gen_id)}

    with ctx.sessions() as session:
        failed, delivered, again = attempts_of(session, gen_id)
    assert (failed.outcome, failed.http_status, failed.error) == ("failed", 500, "HTTP 500")
    assert failed.response_excerpt == ("oops " * 500)[:1024]
    assert (delivered.outcome, delivered.http_status, delivered.attempt) == ("delivered", 200, 2)
    assert delivered.response_excerpt == "thanks"
    assert (again.outcome, again.attempt) == ("delivered", 1)
    assert {a.url for a in (failed, delivered, again)} == {hook.url}
    assert all(a.duration_ms >= 0 for a in (failed, delivered, again))
    assert failed.at <= delivered.at <= again.at
