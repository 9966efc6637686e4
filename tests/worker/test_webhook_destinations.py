"""Client webhooks go only where the address policy allows, checked at the address actually
connected to: a name that resolves to a refused address is ``blocked``, never retried, and not
a byte reaches it (asserted on the receiver). Real HTTP, real PostgreSQL and SQLite."""

import socket

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.destinations import AddressPolicy
from models.tables import Generation
from tests.support.receiver import webhook_receiver
from tests.worker.webhook_support import FakeDns, ended_jobs, webhook_ctx, webhook_events
from worker.lifecycle.webhook_http import WebhookHttp
from worker.lifecycle.webhooks import deliver_webhooks

BLOCKED = "blocked: the destination is not allowed by the webhook address policy"


def _gen(sessions: sessionmaker[Session], gen_id: object) -> Generation:
    with sessions() as session:
        gen = session.scalar(select(Generation).where(Generation.id == gen_id))
        assert gen is not None
        return gen


def test_a_name_resolving_to_loopback_is_blocked_and_reaches_nothing(
    sessions: sessionmaker[Session],
) -> None:
    ctx = webhook_ctx(sessions)
    with webhook_receiver() as hook:
        dns = FakeDns({"hooks.example.test": ["127.0.0.1"]})
        [gen_id] = ended_jobs(ctx, f"http://hooks.example.test:{hook.port}/hook")
        with WebhookHttp(AddressPolicy(), timeout=2, resolver=dns) as http:
            assert deliver_webhooks(ctx, http.send) == {"blocked": 1}
            assert deliver_webhooks(ctx, http.send) == {}  # never tried again
        assert hook.connections == 0
        assert hook.received == []
    assert dns.lookups == ["hooks.example.test"]
    gen = _gen(sessions, gen_id)
    assert (gen.webhook_attempts, gen.webhook_delivered_at) == (1, None)
    assert gen.webhook_stopped_at is not None
    [(kind, detail)] = webhook_events(ctx, gen_id)
    assert (kind, detail["error"], detail["http_status"]) == ("webhook_blocked", BLOCKED, None)
    assert "127.0.0.1" not in str(detail)  # the tenant learns nothing about the address


def test_one_refused_answer_among_public_ones_blocks_the_name(
    sessions: sessionmaker[Session],
) -> None:
    """A name answering a public and a private address (how rebinding attacks look) is refused
    whole: nothing is tried on the public one either."""
    ctx = webhook_ctx(sessions)
    with webhook_receiver() as hook:
        dns = FakeDns({"mixed.example.test": ["93.184.215.14", "127.0.0.1"]})
        ended_jobs(ctx, f"http://mixed.example.test:{hook.port}/hook")
        with WebhookHttp(AddressPolicy(), timeout=2, resolver=dns) as http:
            assert deliver_webhooks(ctx, http.send) == {"blocked": 1}
        assert hook.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://0x7f000001:{port}/hook",
        "http://user:pass@127.0.0.1:{port}/hook",
    ],
)
def test_urls_stored_before_the_policy_are_blocked_at_delivery(
    private_sessions: sessionmaker[Session], url: str
) -> None:
    ctx = webhook_ctx(private_sessions)
    with webhook_receiver() as hook:
        [gen_id] = ended_jobs(ctx, url.format(port=hook.port))
        with WebhookHttp(AddressPolicy(), timeout=2) as http:
            deliver_webhooks(ctx, http.send)
        assert hook.connections == 0
    assert [kind for kind, _ in webhook_events(ctx, gen_id)] == ["webhook_blocked"]


def test_the_address_checked_is_the_address_connected_to(
    sessions: sessionmaker[Session],
) -> None:
    """An allowed host that exists only in the stand-in resolver is delivered to: the client
    connected to the address that one lookup gave, never asking the system's DNS again."""
    ctx = webhook_ctx(sessions)
    with webhook_receiver() as hook:
        dns = FakeDns({"hooks.internal": ["127.0.0.1"]})
        ended_jobs(ctx, f"http://hooks.internal:{hook.port}/hook")
        policy = AddressPolicy(allowed_hosts=("hooks.internal",))
        with WebhookHttp(policy, timeout=2, resolver=dns) as http:
            assert deliver_webhooks(ctx, http.send) == {"delivered": 1}
        [call] = hook.received
        assert call["headers"]["Host"] == f"hooks.internal:{hook.port}"
    assert dns.lookups == ["hooks.internal"]


def test_allow_private_reaches_a_private_receiver(sessions: sessionmaker[Session]) -> None:
    ctx = webhook_ctx(sessions)
    with webhook_receiver() as hook:
        ended_jobs(ctx, hook.url)
        with WebhookHttp(AddressPolicy(allow_private=True), timeout=2) as http:
            assert deliver_webhooks(ctx, http.send) == {"delivered": 1}
        assert len(hook.received) == 1


def test_redirects_are_not_followed(sessions: sessionmaker[Session]) -> None:
    ctx = webhook_ctx(sessions)
    with webhook_receiver() as hook, webhook_receiver() as elsewhere:
        hook.answers = [(302, {"Location": elsewhere.url})]
        [gen_id] = ended_jobs(ctx, hook.url)
        with WebhookHttp(AddressPolicy(allow_private=True), timeout=2) as http:
            assert deliver_webhooks(ctx, http.send) == {"failed": 1}
        assert elsewhere.connections == 0
    [(kind, detail)] = webhook_events(ctx, gen_id)
    assert (kind, detail["http_status"], detail["error"]) == ("webhook_failed", 302, "HTTP 302")


def test_what_the_tenant_reads_of_a_failure_is_a_class_not_an_answer(
    private_sessions: sessionmaker[Session],
) -> None:
    """A closed port, and a port that answers something that is not HTTP, read the same way
    they would anywhere: no message from what answered."""
    ctx = webhook_ctx(private_sessions)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    [closed] = ended_jobs(ctx, f"http://127.0.0.1:{port}/hook")
    with WebhookHttp(AddressPolicy(allow_private=True), timeout=2) as http:
        assert deliver_webhooks(ctx, http.send) == {"failed": 1}
    [(_, detail)] = webhook_events(ctx, closed)
    assert detail["error"] == "connect error: the destination could not be resolved or reached"
