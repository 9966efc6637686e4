"""Every delivery is signed per Standard Webhooks with its tenant's secret, verified here by the
``standardwebhooks`` package as a receiver would; after a rotation both secrets sign for 24 h;
the ``webhook-id`` is the same for every attempt at one generation's delivery."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook, WebhookVerificationError

from models.destinations import AddressPolicy
from models.secretbox import SecretBox
from models.tables import Generation, Tenant
from models.webhook_secrets import current_secret, rotate
from tests.support.receiver import webhook_receiver
from tests.worker.webhook_support import BOX, ended_jobs, tenant_of, webhook_ctx, webhook_events
from worker.lifecycle.webhook_claim import claim
from worker.lifecycle.webhook_http import WebhookHttp
from worker.lifecycle.webhook_sign import message_id
from worker.lifecycle.webhooks import deliver_webhooks, payload_builder

PRIVATE_OK = AddressPolicy(allow_private=True)


def test_each_tenant_signs_with_its_own_secret(private_sessions: sessionmaker[Session]) -> None:
    ctx = webhook_ctx(private_sessions)
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        [a] = ended_jobs(ctx, hook.url)
        [b] = ended_jobs(ctx, hook.url)
        assert deliver_webhooks(ctx, http.send) == {"delivered": 2}
    with ctx.sessions.begin() as session:
        secret_a = current_secret(session, BOX, tenant_of(ctx, a))
        secret_b = current_secret(session, BOX, tenant_of(ctx, b))
    assert secret_a.startswith("whsec_")
    assert secret_a != secret_b
    by_id = {c["headers"]["webhook-id"]: c for c in hook.received}
    call_a, call_b = by_id[message_id(a)], by_id[message_id(b)]
    assert Webhook(secret_a).verify(call_a["raw"], call_a["headers"])["request_id"] == str(a)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_b).verify(call_a["raw"], call_a["headers"])
    assert Webhook(secret_b).verify(call_b["raw"], call_b["headers"])["request_id"] == str(b)
    stamp = int(call_a["headers"]["webhook-timestamp"])
    assert abs(stamp - datetime.now(UTC).timestamp()) < 300
    assert secret_a not in str(hook.received)


def test_after_a_rotation_both_secrets_verify_for_a_day(
    private_sessions: sessionmaker[Session],
) -> None:
    ctx = webhook_ctx(private_sessions)
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        [first] = ended_jobs(ctx, hook.url)
        tenant_id = tenant_of(ctx, first)
        with ctx.sessions.begin() as session:
            old = current_secret(session, BOX, tenant_id)
            new = rotate(session, BOX, tenant_id, now=datetime.now(UTC))
        assert new != old
        deliver_webhooks(ctx, http.send)
        assert hook.verified(old) == hook.verified(new)  # both signatures are on it
        assert len(hook.received[0]["headers"]["webhook-signature"].split(" ")) == 2

        with ctx.sessions.begin() as session:  # a day and a bit later
            session.execute(
                update(Tenant)
                .where(Tenant.id == tenant_id)
                .values(webhook_secret_rotated_at=datetime.now(UTC) - timedelta(hours=25))
            )
        hook.received.clear()
        ended_jobs(ctx, hook.url, tenant_id=tenant_id)
        deliver_webhooks(ctx, http.send)
        assert len(hook.verified(new)) == 1
        with pytest.raises(WebhookVerificationError):
            hook.verified(old)


def test_a_lost_attempt_is_sent_again_as_the_same_message(
    private_sessions: sessionmaker[Session],
) -> None:
    """A worker that dies mid-delivery leaves its lease behind; once it runs out, the next
    attempt carries the same ``webhook-id`` (the integration suite kills a real worker)."""
    ctx = webhook_ctx(private_sessions)
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        [gen_id] = ended_jobs(ctx, hook.url)
        [lost] = claim(ctx, payload_builder(ctx))  # taken by a worker that then died
        assert deliver_webhooks(ctx, http.send) == {}  # its lease still holds
        with ctx.sessions.begin() as session:
            session.execute(
                update(Generation)
                .where(Generation.id == gen_id)
                .values(webhook_lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert deliver_webhooks(ctx, http.send) == {"delivered": 1}
    assert lost.id == gen_id
    assert [c["headers"]["webhook-id"] for c in hook.received] == [message_id(gen_id)]


def test_an_unreadable_secret_sends_nothing_and_is_retried(
    private_sessions: sessionmaker[Session],
) -> None:
    ctx = webhook_ctx(private_sessions)
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        [gen_id] = ended_jobs(ctx, hook.url)
        with ctx.sessions.begin() as session:
            current_secret(session, BOX, tenant_of(ctx, gen_id))
        other = SecretBox("another-master-secret-" + "y" * 32)
        ctx.secret_box = lambda: other
        assert deliver_webhooks(ctx, http.send) == {"failed": 1}
        assert hook.connections == 0
    [(kind, detail)] = webhook_events(ctx, gen_id)
    assert kind == "webhook_failed"
    assert detail["error"].startswith("not sent: the tenant's signing secret could not be read")


def test_a_key_file_that_cannot_be_read_sends_nothing_and_is_retried(
    private_sessions: sessionmaker[Session],
) -> None:
    ctx = webhook_ctx(private_sessions)

    def unreadable() -> SecretBox:
        raise PermissionError("[Errno 13] Permission denied: '/data/secret.key'")

    ctx.secret_box = unreadable
    with webhook_receiver() as hook, WebhookHttp(PRIVATE_OK, timeout=5) as http:
        [gen_id] = ended_jobs(ctx, hook.url)
        assert deliver_webhooks(ctx, http.send) == {"failed": 1}
        assert hook.connections == 0
    [(kind, _)] = webhook_events(ctx, gen_id)
    assert kind == "webhook_failed"
