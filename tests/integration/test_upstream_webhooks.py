"""fal's webhooks end to end: the simulator signs and POSTs them (duplicated, delayed, dropped,
forged as told) to a real API process, which verifies them against the simulator's JWKS; a real
Celery worker and beat poll as the safety net. The stack is this module's own (its own database
and Redis, so no other stack's worker takes its work)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from genqueue.net import wait_until
from migrations.runner import upgrade
from models.db import make_engine, make_session_factory
from models.generations import request_cancel
from models.status import TERMINAL
from models.tables import Generation
from tests.integration.test_pipeline import SEED_INPUT
from tests.integration.test_pipeline import SEED_PROMPT as SEED
from tests.support.jobs import Jobs, assert_exactly_once
from tests.support.services import postgres_database, redis_database
from tests.support.stack import UPSTREAM_KEY, SimAdmin, Stack, running_stack

pytestmark = pytest.mark.integration

SIM_DEFAULTS: dict[str, Any] = {
    "run_time": 1.0,
    "capacity": None,
    "honor_cancel": True,
    "validate": "submit",
    "webhook_drop": 0.0,
    "webhook_duplicate": 0.0,
    "webhook_delay": 0.0,
    "webhook_forge": [],
    "webhook_retry_scale": 0.001,
}
SAFETY_NET = {"GENQUEUE_WEBHOOK_POLL_INTERVAL": "5", "GENQUEUE_WEBHOOK_POLL_MARGIN": "4"}
"""Polls of webhook jobs: the first 5 s after submit (or p90 + 4 s), then every 5 s."""


@pytest.fixture(scope="module")
def hooked() -> Iterator[tuple[Stack, sessionmaker[Session]]]:
    with postgres_database() as url, redis_database() as broker:
        upgrade(url)
        engine = make_engine(url)
        try:
            with running_stack(
                database_url=url, broker_url=broker, extra_env=SAFETY_NET, upstream_webhooks=True
            ) as stack:
                yield stack, make_session_factory(engine)
        finally:
            engine.dispose()


@pytest.fixture
def sim(hooked: tuple[Stack, sessionmaker[Session]]) -> Iterator[SimAdmin]:
    stack, _ = hooked
    stack.sim.clear_faults()
    stack.sim.configure(**SIM_DEFAULTS)
    yield stack.sim
    stack.sim.clear_faults()
    stack.sim.configure(**SIM_DEFAULTS)


@pytest.fixture
def jobs(hooked: tuple[Stack, sessionmaker[Session]], sim: SimAdmin) -> Iterator[Jobs]:
    stack, sessions = hooked
    celery = Celery("genqueue-webhook-tests", broker=stack.broker_url)
    try:
        yield Jobs(sessions, celery, stack)
    finally:
        celery.close()


def _upstream_result(gen: Generation) -> Any:
    """What polling would record: the simulator's answer to the result fetch."""
    assert gen.response_url is not None
    answer = httpx.get(gen.response_url, headers={"Authorization": f"Key {UPSTREAM_KEY}"})
    return answer.status_code, answer.json()


def _settled(gen: Generation) -> list[str]:
    """The kinds of the events that ended the job (exactly one, when it settled once)."""
    return [e.kind for e in gen.events if e.status in TERMINAL]


def _webhook_outcomes(gen: Generation) -> list[str]:
    return [(e.detail or {})["outcome"] for e in gen.events if e.kind == "upstream_webhook"]


def test_the_seed_example_with_webhooks_records_what_polling_would(
    jobs: Jobs, sim: SimAdmin
) -> None:
    gen_id = jobs.create(**{k: v for k, v in SEED_INPUT.items() if k != "prompt"}, prompt=SEED)
    [gen] = jobs.wait([gen_id], timeout=60)
    assert gen.status == "completed", gen.error
    assert gen.expects_webhook is True
    calls = sim.calls(gen.upstream_request_id)
    assert (calls["submit"], calls["result"]) == (1, 0)  # the payload came with the webhook
    assert (200, gen.result) == _upstream_result(gen)
    assert _webhook_outcomes(gen) == ["completed"]
    [ended] = [e for e in gen.events if e.kind == "completed"]
    assert ended.detail == {"via": "webhook"}
    assert_exactly_once(jobs, gen)


def test_duplicates_and_late_copies_settle_each_job_once(jobs: Jobs, sim: SimAdmin) -> None:
    sim.configure(webhook_duplicate=1.0, webhook_delay=1.5)
    ids = [jobs.create(f"twice {i}") for i in range(6)]
    gens = jobs.wait(ids, timeout=90)
    for gen in gens:
        assert gen.status == "completed", gen.error
        assert _settled(gen) == ["completed"]
        assert (200, gen.result) == _upstream_result(gen)

    def both_copies_answered() -> bool:
        return all(len(_webhook_outcomes(jobs.get(i))) == 2 for i in ids)

    wait_until(both_copies_answered, 30, what="the second copy of every webhook")
    for gen_id in ids:
        assert sorted(_webhook_outcomes(jobs.get(gen_id))) in (
            ["already_ended", "completed"],
            ["already_ended", "already_ended"],  # a poll was first
        )


def test_webhooks_racing_the_safety_net_settle_each_job_once(jobs: Jobs, sim: SimAdmin) -> None:
    # The first safety-net check comes about 5 s after submit; the webhooks come 0-10 s late,
    # so some jobs are settled by a poll and some by their webhook.
    sim.configure(webhook_delay=10.0)
    ids = [jobs.create(f"race {i}") for i in range(8)]
    gens = jobs.wait(ids, timeout=120)
    for gen in gens:
        assert gen.status == "completed", gen.error
        assert _settled(gen) == ["completed"]
        assert (200, gen.result) == _upstream_result(gen)
        assert_exactly_once(jobs, gen)


def test_forged_webhooks_change_nothing(jobs: Jobs, sim: SimAdmin) -> None:
    kinds = ["bad_signature", "wrong_key", "stale_timestamp", "other_payload"]
    before = sim.http.get("/_sim/stats").json()["webhooks"]
    sim.configure(webhook_forge=kinds)
    ids = [jobs.create(f"forged {i}") for i in range(3)]
    gens = jobs.wait(ids, timeout=60)
    for gen in gens:
        assert gen.status == "completed", gen.error
        assert (200, gen.result) == _upstream_result(gen)  # the genuine one's payload
        assert _webhook_outcomes(gen) == ["completed"]
        tries = sim.request(str(gen.upstream_request_id))["webhooks"]
        assert sorted((t["forged"] or "", t["status"]) for t in tries) == sorted(
            [(kind, 401) for kind in kinds] + [("", 200)]
        )
    after = sim.http.get("/_sim/stats").json()["webhooks"]
    assert after.get("forged_accepted", 0) == before.get("forged_accepted", 0)


def test_a_dropped_webhook_is_found_by_the_safety_net(jobs: Jobs, sim: SimAdmin) -> None:
    sim.configure(webhook_drop=1.0)
    gen_id = jobs.create("dropped")
    [gen] = jobs.wait([gen_id], timeout=60)
    assert gen.status == "completed", gen.error
    assert _webhook_outcomes(gen) == []
    calls = sim.calls(gen.upstream_request_id)  # the safety net's first check found it
    assert (calls["status"], calls["result"]) == (1, 1)
    info = sim.request(str(gen.upstream_request_id))
    assert [t["status"] for t in info["webhooks"]] == ["dropped"]
    assert (200, gen.result) == _upstream_result(gen)


def test_an_error_webhook_fails_the_job_with_upstreams_body(jobs: Jobs, sim: SimAdmin) -> None:
    sim.add_fault(op="submit", kind="model_error", status_code=503, match_prompt="broken")
    gen_id = jobs.create("broken")
    [gen] = jobs.wait([gen_id], timeout=60)
    assert gen.status == "failed"
    assert gen.error is not None
    assert (gen.error["type"], gen.error["http_status"]) == ("upstream_error", 503)
    assert sim.calls(gen.upstream_request_id)["result"] == 0
    assert (503, gen.error["body"]) == _upstream_result(gen)
    assert _webhook_outcomes(gen) == ["failed"]


def test_a_cancel_ends_cancelled_through_the_webhook(jobs: Jobs, sim: SimAdmin) -> None:
    sim.configure(run_time=30.0)
    gen_id = jobs.create("cancel me")
    jobs.wait([gen_id], statuses={"queued", "running"}, timeout=30)
    with jobs.sessions.begin() as session:
        request_cancel(session, gen_id, now=datetime.now(UTC))
    [gen] = jobs.wait([gen_id], timeout=60)
    assert gen.status == "cancelled"
    assert gen.error is not None
    assert (gen.error["type"], gen.error["http_status"]) == ("cancelled", 499)
