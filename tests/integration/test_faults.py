"""Faults mid-flight: a killed worker and a flushed broker cost latency, never a job; a
result upstream finished during an outage is never thrown away at the deadline."""

from datetime import UTC, datetime

import pytest
import redis

from genqueue.net import wait_until
from tests.support.jobs import Jobs, assert_exactly_once, assert_result_as_produced
from tests.support.stack import SimAdmin, Stack

pytestmark = pytest.mark.integration


def test_worker_killed_mid_flight(jobs: Jobs, stack: Stack, sim: SimAdmin) -> None:
    sim.configure(run_time=2.0, capacity=None)
    ids = [jobs.create(f"kill {i}") for i in range(10)]
    jobs.wait(ids[:3], statuses={"queued", "running", "completed"}, timeout=30)
    stack.worker.kill()  # SIGKILL to the whole process group: parent and children
    stack.worker.start()
    gens = jobs.wait(ids, timeout=90)
    assert [g.status for g in gens] == ["completed"] * 10
    for gen in gens:
        assert_exactly_once(jobs, gen)


def test_broker_flushed_mid_flight(jobs: Jobs, stack: Stack, sim: SimAdmin) -> None:
    sim.configure(run_time=2.0, capacity=None)
    stack.worker.kill()  # messages pile up unconsumed in the broker…
    ids = [jobs.create(f"flush {i}") for i in range(8)]
    broker = redis.Redis.from_url(stack.broker_url)
    claim = broker.get("genqueue-test:claim")
    broker.flushdb()  # …and are lost
    if claim:
        broker.set("genqueue-test:claim", claim, ex=3600)
    stack.worker.start()
    gens = jobs.wait(ids, timeout=90)
    assert [g.status for g in gens] == ["completed"] * 8
    for gen in gens:
        assert_exactly_once(jobs, gen)


def test_a_result_finished_while_the_worker_was_down_survives_the_deadline(
    jobs: Jobs,
    stack: Stack,
    sim,  # type: ignore[no-untyped-def]
) -> None:
    sim.configure(run_time=2.0, capacity=None)
    finished = jobs.create("finishes while nobody looks", deadline=8.0)
    jobs.wait([finished], statuses={"queued", "running"}, timeout=30)
    first = jobs.get(finished).upstream_request_id
    wait_until(lambda: sim.request(first)["state"] != "IN_QUEUE", 10, what="the first to start")
    sim.configure(run_time=120.0)  # the next job is still running at its deadline
    unfinished = jobs.create("still running at its deadline", deadline=8.0)
    jobs.wait([unfinished], statuses={"queued", "running"}, timeout=30)
    stack.worker.kill()  # the outage straddles both deadlines
    try:
        wait_until(lambda: sim.request(first)["state"] == "COMPLETED", 30, what="upstream done")
        late = max(jobs.get(i).deadline_at for i in (finished, unfinished))
        wait_until(lambda: datetime.now(UTC) > late, 30, what="both deadlines to pass")
    finally:
        stack.worker.start()
    done, failed = jobs.wait([finished, unfinished], timeout=60)
    assert done.status == "completed", done.error
    assert_result_as_produced(done)  # upstream's own result, fetched after the deadline
    assert sim.request(done.upstream_request_id)["calls"]["cancel"] == 0
    assert failed.status == "failed" and failed.error is not None
    assert failed.error["type"] == "deadline_exceeded"
    assert sim.request(failed.upstream_request_id)["calls"]["cancel"] == 1
    for gen in (done, failed):
        assert_exactly_once(jobs, gen)
