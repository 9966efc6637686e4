"""The pipeline end to end through a real Celery worker and beat (never eager)."""

import hashlib
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from PIL import Image

from genqueue.net import wait_until
from models import tasknames
from models.generations import request_cancel
from models.history import positions_in
from models.secretbox import secret_box
from models.settings import Settings
from models.status import GenerationStatus
from models.webhook_secrets import current_secret
from tests.support.jobs import Jobs, assert_exactly_once
from tests.support.receiver import webhook_receiver
from tests.support.stack import UPSTREAM_KEY, SimAdmin, Stack

pytestmark = pytest.mark.integration

SEED_PROMPT = (
    "Extreme close-up of a single tiger eye, direct frontal view. Detailed iris and pupil. "
    "Sharp focus on eye texture and color. Natural lighting to capture authentic eye shine and "
    'depth. The word "FLUX" is painted over it in big, white brush strokes with visible texture.'
)
SEED_INPUT: dict[str, Any] = {
    "prompt": SEED_PROMPT,
    "guidance_scale": 3.5,
    "num_images": 1,
    "output_format": "jpeg",
    "safety_tolerance": "2",
    "aspect_ratio": "1:1",
}


def test_seed_example_walks_every_state(jobs: Jobs, sim: SimAdmin) -> None:
    # Running must outlast the stack's longest poll interval (1 s, plus a 0.25 s tick), or a
    # poll may never catch the job IN_PROGRESS (it failed so once with 0.8 s).
    sim.configure(capacity=1, run_time=2.0)
    blockers = [jobs.create(f"blocker {i}") for i in range(3)]
    wait_until(
        lambda: all(jobs.get(b).status != "pending" for b in blockers),
        20,
        what="blockers submitted",
    )
    gen_id = jobs.create(
        **{k: v for k, v in SEED_INPUT.items() if k != "prompt"}, prompt=SEED_PROMPT
    )
    [gen] = jobs.wait([gen_id], timeout=60)

    assert gen.status == GenerationStatus.COMPLETED, gen.error
    statuses = [
        e.status for e in gen.events if e.kind != "queue_position" and "media" not in e.kind
    ]
    assert statuses == ["pending", "submitting", "queued", "running", "completed"]
    positions = [p for _, p in positions_in(gen.events)]  # every position, runs included
    assert len(set(positions)) >= 2, positions
    assert positions == sorted(positions, reverse=True), positions
    assert positions[-1] == 0

    assert gen.result is not None
    assert gen.upstream_request_id
    [image] = gen.result["images"]
    assert (image["width"], image["height"], image["content_type"]) == (1024, 1024, "image/jpeg")
    picture = Image.open(io.BytesIO(httpx.get(image["url"]).content))
    assert (picture.format, picture.size) == ("JPEG", (1024, 1024))
    assert isinstance(gen.result["seed"], int)
    assert gen.result["has_nsfw_concepts"] == [False]

    [submit] = jobs.submits(gen)
    assert submit["body"] == gen.input
    assert gen.input["prompt"].startswith(SEED_PROMPT)
    assert submit["auth_sha256"] == hashlib.sha256(f"Key {UPSTREAM_KEY}".encode()).hexdigest()
    assert submit["request_id"] == gen.upstream_request_id
    info = sim.request(gen.upstream_request_id)
    assert info["calls"]["submit"] == 1
    assert info["calls"]["result"] == 1
    assert info["calls"]["status"] == gen.poll_count


def test_the_same_submit_delivered_twice_submits_once(jobs: Jobs) -> None:
    gen_id = jobs.create(publish=False)
    for _ in range(3):
        jobs.publish(tasknames.SUBMIT_MANY, [str(gen_id)])
    [gen] = jobs.wait([gen_id])
    assert gen.status == GenerationStatus.COMPLETED
    assert gen.submit_attempts == 1
    assert_exactly_once(jobs, gen)


def test_a_lost_publish_is_found_by_the_dispatcher(jobs: Jobs) -> None:
    gen_id = jobs.create(publish=False)  # committed row, message never sent
    [gen] = jobs.wait([gen_id], timeout=30)
    assert gen.status == GenerationStatus.COMPLETED
    assert_exactly_once(jobs, gen)


def test_cancel_in_each_state(jobs: Jobs, sim: SimAdmin) -> None:
    sim.configure(capacity=1, run_time=3.0)
    pending = jobs.create("pending", publish=False)
    jobs.publish(tasknames.CANCEL, str(pending))
    # Submits run concurrently, so which job gets the one upstream slot is not known ahead:
    # wait for a moment when one is running and another is queued behind it.
    slots = [jobs.create(f"slot {i}") for i in range(3)]

    def running_and_queued() -> tuple[uuid.UUID, uuid.UUID] | None:
        gens = [jobs.get(i) for i in slots]
        running_ids = [g.id for g in gens if g.status == "running"]
        queued_ids = [g.id for g in gens if g.status == "queued"]
        return (running_ids[0], queued_ids[0]) if running_ids and queued_ids else None

    running, queued = wait_until(running_and_queued, 30, what="one running, one queued")
    for gen_id in (queued, running):
        jobs.publish(tasknames.CANCEL, str(gen_id))
    gens = jobs.wait([pending, queued, running], timeout=30)
    assert [g.status for g in gens] == ["cancelled"] * 3
    assert gens[0].upstream_request_id is None
    assert jobs.submits(gens[0]) == []
    for gen in gens[1:]:
        assert gen.error is not None
        assert gen.error["http_status"] == 499
        assert sim.calls(gen.upstream_request_id)["cancel"] == 1
        assert_exactly_once(jobs, gen)


def test_cancel_too_late_and_cancel_after_completion(jobs: Jobs, sim: SimAdmin) -> None:
    # Long enough that a poll sees it running on a loaded machine (at 2 s one once came only
    # after the run had ended, and the job went from queued to completed).
    sim.configure(honor_cancel=False, run_time=5.0)
    gen_id = jobs.create("late cancel")
    jobs.wait([gen_id], statuses={"running"}, timeout=20)
    jobs.publish(tasknames.CANCEL, str(gen_id))
    [gen] = jobs.wait([gen_id])
    assert gen.status == GenerationStatus.COMPLETED
    assert gen.cancel_requested_at is not None
    assert any(
        e.kind == "completed" and "too late" in (e.detail or {}).get("note", "") for e in gen.events
    )
    with jobs.sessions.begin() as session:  # completed → refused, nothing changes
        answer = request_cancel(session, gen_id, now=datetime.now(UTC))
    assert (answer.outcome, answer.status) == ("already_terminal", GenerationStatus.COMPLETED)


def test_storms_of_5xx_and_429(jobs: Jobs, sim: SimAdmin) -> None:
    sim.configure(run_time=0.5)
    sim.add_fault(op="submit", kind="retry_after", retry_after=1, probability=0.4)
    sim.add_fault(op="submit", kind="http", status_code=503, probability=0.3)
    sim.add_fault(op="status", kind="http", status_code=500, probability=0.3)
    sim.add_fault(op="status", kind="ingress_502", probability=0.2)
    sim.add_fault(op="result", kind="http", status_code=502, probability=0.3)
    ids = [jobs.create(f"storm {i}") for i in range(12)]
    gens = jobs.wait(ids, timeout=90)
    assert [g.status for g in gens] == ["completed"] * 12, [g.error for g in gens if g.error]
    for gen in gens:
        assert_exactly_once(jobs, gen)
    assert any(e.kind == "submit_retry" for g in gens for e in g.events)
    assert any(e.kind in ("poll_retry", "result_retry") for g in gens for e in g.events)


def test_422_at_submit_and_deferred(jobs: Jobs, sim: SimAdmin) -> None:
    at_submit = jobs.create("bad now", guidance_scale=99)
    [gen] = jobs.wait([at_submit])
    assert gen.error is not None
    assert (gen.status, gen.error["http_status"]) == ("failed", 422)
    assert len(sim.submits(gen.input["prompt"])) == 1  # rejected once, never retried
    sim.configure(validate="result")
    deferred = jobs.create("bad later", num_images=7)
    [gen] = jobs.wait([deferred])
    assert gen.status == GenerationStatus.FAILED
    assert gen.error is not None
    assert gen.error["http_status"] == 422
    assert gen.error["body"]["detail"][0]["loc"][-1] == "num_images"
    assert_exactly_once(jobs, gen)


def test_result_expiry_and_deadline(jobs: Jobs, sim: SimAdmin) -> None:
    sim.add_fault(op="result", kind="expire_result", match_prompt="expiring")
    expiring = jobs.create("expiring")
    sim.configure(run_time=30.0)
    slow = jobs.create("too slow", deadline=3.0)
    expired_gen, slow_gen = jobs.wait([expiring, slow], timeout=40)
    assert expired_gen.error is not None
    assert expired_gen.error["type"] == "result_unavailable"
    assert slow_gen.status == GenerationStatus.FAILED
    assert slow_gen.error is not None
    assert slow_gen.error["type"] == "deadline_exceeded"
    assert sim.calls(slow_gen.upstream_request_id)["cancel"] == 1


def test_client_webhook_is_delivered_by_the_worker(jobs: Jobs, stack: Stack) -> None:
    with webhook_receiver() as hook:
        gen_id = jobs.create("with a webhook", webhook_url=hook.url)
        [gen] = jobs.wait([gen_id])
        wait_until(lambda: hook.received, 20, what="the webhook")
        [call] = hook.received
        assert call["body"]["request_id"] == str(gen_id)
        assert call["body"]["status"] == "OK"
        assert call["body"]["payload"] == gen.result
        assert UPSTREAM_KEY not in str(call)
        wait_until(lambda: jobs.get(gen_id).webhook_delivered_at, 10, what="delivery recorded")
    # Signed with the tenant's secret, sealed under the stack's key file (its data dir).
    box = secret_box(Settings(data_dir=stack.dir))
    with jobs.sessions.begin() as session:
        secret = current_secret(session, box, jobs.tenant_id)
    assert hook.verified(secret) == [call["body"]]
    for process in (stack.worker, stack.webhooks, stack.beat):
        assert secret.removeprefix("whsec_") not in process.log()
