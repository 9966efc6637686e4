"""The fault suite: inject a fault mid-flight, then assert the invariants — every job terminal,
none stuck, each submitted upstream exactly once unless an ambiguous submit was recorded, and
the recorded result equal to what the upstream produced. The faults of the worker and the broker
run on both brokers (test_brokers.py); these run on Redis."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
import redis
from sqlalchemy import text

from genqueue.net import wait_until
from tests.chaos.conftest import ApiJobs, ChaosStack
from tests.support.jobs import assert_invariants
from tests.support.services import RedisServer
from tests.support.stack import FLOWER_AUTH, UPSTREAM_KEY, Process

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def _progress(jobs: ApiJobs, ids: list[uuid.UUID], at_least: int) -> bool:
    return sum(jobs.get(i).status != "pending" for i in ids) >= at_least


def test_postgres_restarted(jobs: ApiJobs, chaos: ChaosStack) -> None:
    jobs.stack.sim.configure(run_time=2.0)
    ids = [jobs.submit(f"pg {i}") for i in range(12)]
    wait_until(lambda: _progress(jobs, ids, 3), 60, what="progress")
    chaos.pg.stop()
    try:
        down = jobs.post("while the database is down")
        assert down.status_code == 503, down.text
        assert "detail" in down.json()
        assert jobs.api.get("/readyz").status_code == 503
        assert jobs.api.get("/healthz").status_code == 200
    finally:
        chaos.pg.start()
    wait_until(lambda: jobs.api.get("/readyz").status_code == 200, 30, what="readyz")
    gens = assert_invariants(jobs, ids, timeout=120)
    assert [g.status for g in gens] == ["completed"] * len(ids)


def test_a_result_finished_while_the_database_was_down_survives_the_deadline(
    jobs: ApiJobs, chaos: ChaosStack
) -> None:
    sim = chaos.stack.sim
    sim.configure(run_time=2.0)
    gen_id = jobs.create("finishes while the database is down", deadline=8.0)
    jobs.wait([gen_id], statuses={"queued", "running"}, timeout=30)
    request_id = jobs.get(gen_id).upstream_request_id
    assert request_id is not None
    deadline = jobs.get(gen_id).deadline_at
    chaos.pg.stop()  # nothing can be read or written until after the deadline
    try:
        wait_until(lambda: sim.request(request_id)["state"] == "COMPLETED", 30, what="upstream")
        wait_until(lambda: datetime.now(UTC) > deadline + timedelta(seconds=1), 30, what="deadline")
    finally:
        chaos.pg.start()
    [gen] = assert_invariants(jobs, [gen_id], timeout=90)
    assert gen.status == "completed", gen.error  # with upstream's result (assert_invariants)
    assert sim.request(request_id)["calls"]["cancel"] == 0


def test_upstream_storm(jobs: ApiJobs) -> None:
    sim = jobs.stack.sim
    sim.configure(run_time=0.5)
    sim.add_fault(op="submit", kind="retry_after", retry_after=1, probability=0.2)
    sim.add_fault(op="submit", kind="http", status_code=503, probability=0.15)
    sim.add_fault(op="submit", kind="accept_then_reset", probability=0.1)
    sim.add_fault(op="submit", kind="hang", delay=3, probability=0.05)  # past the read timeout
    sim.add_fault(op="status", kind="http", status_code=500, probability=0.15)
    sim.add_fault(op="status", kind="ingress_502", probability=0.1)
    sim.add_fault(op="status", kind="reset", probability=0.1)
    sim.add_fault(op="status", kind="malformed", probability=0.1)
    sim.add_fault(op="status", kind="hang", delay=3, probability=0.05)
    sim.add_fault(op="result", kind="http", status_code=502, probability=0.2)
    sim.add_fault(op="result", kind="retry_after", retry_after=1, probability=0.1)
    sim.add_fault(
        op="any",
        kind="model_error",
        status_code=422,
        error_type="content_policy_violation",
        match_prompt="deferred",
    )
    sim.add_fault(
        op="any",
        kind="model_error",
        status_code=503,
        error_type="runner_disconnected",
        match_prompt="doomed",
    )
    good = [jobs.submit(f"storm {i}") for i in range(16)]
    deferred, doomed = jobs.submit("deferred 422"), jobs.submit("doomed")
    ids = [*good, deferred, doomed]
    jobs.wait(ids, timeout=150)
    sim.clear_faults()  # so the comparison with upstream's result is not itself faulted
    gens = assert_invariants(jobs, ids)
    assert [g.status for g in gens[: len(good)]] == ["completed"] * len(good)
    ends = [
        (g.status, (g.error or {}).get("http_status"), (g.error or {}).get("error_type"))
        for g in gens[len(good) :]
    ]
    assert ends == [
        ("failed", 422, "content_policy_violation"),
        ("failed", 503, "runner_disconnected"),
    ]
    kinds = {e.kind for g in gens for e in g.events}
    assert {"submit_retry", "poll_retry"} <= kinds


def test_beat_stopped_then_two_beats(jobs: ApiJobs, chaos: ChaosStack) -> None:
    stack = chaos.stack
    stack.sim.configure(run_time=0.5)
    stack.beat.kill()
    ids = [jobs.submit(f"beatless {i}") for i in range(10)]
    # Without beat nothing is polled: the jobs are submitted and then wait.
    wait_until(lambda: all(jobs.get(i).status == "queued" for i in ids), 30, what="submitted")
    assert all(jobs.get(i).poll_count == 0 for i in ids)
    second = Process(
        "beat2", [*stack.beat.argv[:-1], str(stack.dir / "beat2-schedule")], stack.env, stack.dir
    )
    stack.beat.start()
    second.start()
    try:
        gens = assert_invariants(jobs, ids, timeout=60)
    finally:
        second.kill()
    assert [g.status for g in gens] == ["completed"] * len(ids)
    for gen in gens:  # one status call per recorded poll: no row was polled twice at once
        calls = stack.sim.calls(gen.upstream_request_id)
        assert calls["status"] == gen.poll_count, (gen.id, calls, gen.poll_count)


def test_the_upstream_key_appears_nowhere(
    jobs: ApiJobs, chaos: ChaosStack, request: pytest.FixtureRequest
) -> None:
    stack = chaos.stack
    flower = httpx.Client(base_url=stack.flower_url, auth=FLOWER_AUTH, timeout=10)
    request.addfinalizer(flower.close)
    # Flower lists tasks from the events it captured; beat's ticks show it is capturing.
    wait_until(lambda: flower.get("/api/tasks").json(), 60, what="flower to capture events")
    ids = [jobs.submit(f"secret {i}") for i in range(3)]
    stack.sim.add_fault(
        op="any",
        kind="model_error",
        status_code=500,
        error_type="runner_server_error",
        match_prompt="failing",
    )
    ids.append(jobs.submit("secret failing"))
    assert_invariants(jobs, ids, timeout=60)
    seen: list[str] = []
    for gen_id in ids:  # API responses, native and fal
        seen.append(jobs.api.get(f"/v1/generations/{gen_id}").text)
        seen.append(jobs.api.get(f"/fal-ai/flux-pro/requests/{gen_id}/status?logs=1").text)
        seen.append(jobs.api.get(f"/fal-ai/flux-pro/requests/{gen_id}").text)
    seen.append(jobs.api.get("/v1/generations").text)
    seen.append(jobs.api.get("/metrics").text)
    with psycopg.connect(stack.database_url) as conn:  # every column of every table
        for (table,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall():
            rows = conn.execute(f'SELECT row_to_json(t)::text FROM "{table}" t').fetchall()
            seen.extend(r[0] for r in rows)

    def flower_saw_our_submits() -> dict[str, dict[str, object]] | None:
        tasks: dict[str, dict[str, object]] = flower.get("/api/tasks").json()
        ours = {
            str(t.get("args")) for t in tasks.values() if t.get("name") == "generation.submit_many"
        }
        return tasks if all(any(str(i) in a for a in ours) for i in ids) else None

    tasks = wait_until(flower_saw_our_submits, 30, what="flower to list our submit tasks")
    seen.append(json.dumps(tasks))
    assert isinstance(chaos.broker, RedisServer)  # this module's stack runs on Redis
    broker = redis.Redis.from_url(chaos.broker.url)
    for key in broker.scan_iter():
        seen.append(repr(broker.dump(key)))
    seen.extend(p.log() for p in stack.processes if p.name != "simulator")
    leaks = [chunk[:200] for chunk in seen if UPSTREAM_KEY in chunk]
    assert leaks == []
    with jobs.sessions() as session:  # and the rows really are there to be searched
        assert session.execute(text("SELECT count(*) FROM generations")).scalar_one() >= 4
