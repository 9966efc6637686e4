"""Faults mid-flight: a killed worker and a flushed broker cost latency, never a job."""

import pytest
import redis

from tests.support.jobs import Jobs, assert_exactly_once
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
