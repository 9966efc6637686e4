"""The queue engine in-process: positions against a brute-force model, scale, clock injection."""

import random
from typing import Any

from simulator import ManualClock, Simulator, SimulatorConfig
from simulator.calls import Call
from simulator.engine import JobQueue
from simulator.faults import Op
from simulator.jobs import Job, JobState
from simulator.validation import gen_params

APP = "fal-ai/flux-pro"
ENDPOINT = "fal-ai/flux-pro/kontext/text-to-image"


def _job(n: int, now: float) -> Job:
    params = gen_params({"prompt": f"job {n}"})
    return Job(str(n), ENDPOINT, APP, {}, params, seed=1, submitted=now)


def test_positions_match_a_brute_force_model_under_random_operations() -> None:
    rng = random.Random(3)
    ended: list[Job] = []
    queue = JobQueue(run_time=lambda job: rng.uniform(0.5, 3.0), on_end=ended.append)
    jobs: list[Job] = []
    now = 0.0
    for step in range(1500):
        now += rng.uniform(0.0, 0.3)
        capacity = 3
        queue.advance(now, capacity)
        action = rng.random()
        if action < 0.6:
            job = _job(step, now)
            if rng.random() < 0.2:
                job.deadline = now + rng.uniform(0.1, 5.0)
            queue.submit(job, now, capacity)
            jobs.append(job)
        elif action < 0.75 and jobs:
            victim = rng.choice(jobs)
            if victim.state is not JobState.COMPLETED:
                queue.cancel(victim, now, capacity, honor=rng.random() < 0.7)
        waiting = [job for job in jobs if job.state is JobState.IN_QUEUE]
        for expected, job in enumerate(waiting):  # FIFO: position = live jobs ahead
            assert queue.position(job) == expected
        running = [job for job in jobs if job.state is JobState.IN_PROGRESS]
        assert len(running) == queue.running <= capacity
        assert len(waiting) == queue.queued
        assert not waiting or len(running) == capacity  # no idle slot while jobs wait
    assert queue.completed == len(ended) == sum(j.state is JobState.COMPLETED for j in jobs)
    for job in ended:
        if job.started is not None and job.error is None:
            assert job.ended is not None
            assert 0.5 <= job.ended - job.started <= 3.0


def test_deadline_exactly_at_a_free_slot_still_starts() -> None:
    queue = JobQueue(run_time=lambda job: 1.0, on_end=lambda job: None)
    first, second = _job(1, 0.0), _job(2, 0.0)
    second.deadline = 1.0
    queue.submit(first, 0.0, 1)
    queue.submit(second, 0.0, 1)
    queue.advance(5.0, 1)
    assert second.started == 1.0
    assert second.error is None


def _call(op: Op, **fields: Any) -> Call:
    return Call(op=op, app=APP, base_url="http://sim", **fields)


def test_six_thousand_concurrent_jobs_keep_their_places_and_all_complete() -> None:
    """Correctness at scale; what it costs is the simulator benchmark's business, not a timer's."""
    clock = ManualClock()
    sim = Simulator(SimulatorConfig(run_time=5.0, capacity=40), clock=clock)
    ids = []
    for n in range(6000):
        body = b'{"prompt": "load %d"}' % n
        reply = sim.handle(_call("submit", endpoint=ENDPOINT, body=body))
        ids.append(reply.body["request_id"])
    last = sim.handle(_call("status", request_id=ids[-1])).body
    assert last["queue_position"] == 6000 - 40 - 1
    for request_id in ids:
        sim.handle(_call("status", request_id=request_id))
    clock.advance(5.0 * 6000 / 40)
    assert sim.stats()["jobs"] == {"in_queue": 0, "in_progress": 0, "completed": 6000}


def test_wall_clock_times_follow_the_injected_clock() -> None:
    clock = ManualClock(start=50.0)
    sim = Simulator(SimulatorConfig(run_time=2.0), clock=clock, wall_clock=lambda: 1_700_000_000.0)
    reply = sim.handle(_call("submit", endpoint=ENDPOINT, body=b'{"prompt": "x"}'))
    clock.advance(2.0)
    info = sim.request_info(reply.body["request_id"])
    assert info is not None
    assert (info["submitted_at"], info["started_at"], info["completed_at"]) == (
        1_700_000_000.0,
        1_700_000_000.0,
        1_700_000_002.0,
    )
    assert sim.submits()[0]["at"] == 1_700_000_000.0


def test_in_process_calls_are_counted_like_http_calls() -> None:
    sim = Simulator(SimulatorConfig(run_time=1.0), clock=ManualClock())
    reply = sim.handle(_call("submit", endpoint=ENDPOINT, body=b'{"prompt": "x"}'))
    sim.handle(_call("result", request_id=reply.body["request_id"]))
    assert sim.stats()["responses"] == {"submit:200": 1, "result:400": 1}
