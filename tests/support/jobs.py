"""Creating generations the way the API does, waiting on them, and the invariants every fault
test asserts: terminal, submitted exactly once unless recorded ambiguous, result as produced."""

import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from genqueue.net import wait_until
from models import tasknames
from models.keys import create_key
from models.status import TERMINAL
from models.tables import Generation
from tests.support.generations import create_generation
from tests.support.stack import UPSTREAM_KEY, SimAdmin

MODEL = "fal-ai/flux-pro/kontext/text-to-image"


class Deployment(Protocol):
    """What the jobs helper needs of the processes: one host's stack, or many hosts'."""

    sim: SimAdmin

    def logs(self) -> str: ...


class Jobs:
    """Create generations the way the API does (row, commit, publish) and wait on them."""

    def __init__(self, sessions: sessionmaker[Session], celery: Celery, stack: Deployment) -> None:
        self.sessions, self.celery, self.stack = sessions, celery, stack
        self.marker = uuid.uuid4().hex[:10]
        with sessions.begin() as session:
            key, _ = create_key(session, name=f"it-{self.marker}")
            self.tenant_id = key.tenant_id

    def create(
        self,
        prompt: str = "a lighthouse",
        *,
        deadline: float = 120.0,
        publish: bool = True,
        webhook_url: str | None = None,
        **input: Any,
    ) -> uuid.UUID:
        with self.sessions.begin() as session:
            gen = create_generation(
                session,
                tenant_id=self.tenant_id,
                model=MODEL,
                input={"prompt": f"{prompt} [{self.marker}]", **input},
                now=datetime.now(UTC),
                deadline_seconds=deadline,
                submit_grace_seconds=2.0,
                webhook_url=webhook_url,
            )
            gen_id = gen.id
        if publish:
            self.publish(tasknames.SUBMIT_MANY, [str(gen_id)])
        return gen_id

    def publish(self, task: str, *args: Any) -> None:
        self.celery.send_task(task, args=list(args), queue=tasknames.QUEUE)

    def get(self, gen_id: uuid.UUID) -> Generation:
        with self.sessions() as session:
            gen = session.get(Generation, gen_id)
            assert gen is not None
            _ = gen.events
            return gen

    def wait(
        self,
        gen_ids: list[uuid.UUID],
        statuses: frozenset[str] | set[str] = TERMINAL,
        timeout: float = 60.0,
    ) -> list[Generation]:
        def done() -> list[Generation] | None:
            gens = [self.get(i) for i in gen_ids]
            return gens if all(g.status in statuses for g in gens) else None

        try:
            result: list[Generation] = wait_until(
                done, timeout, interval=0.1, what=f"{len(gen_ids)} jobs to reach {statuses}"
            )
        except TimeoutError:
            print(self.stack.logs())
            print(self.describe(gen_ids))
            raise
        return result

    def describe(self, gen_ids: list[uuid.UUID]) -> str:
        """Where each job stands and how many jobs of any tenant are live: what a timed-out
        wait needs to tell a slow stack from a stuck job."""
        now = datetime.now(UTC)
        lines = [f"at {now.isoformat()}:"]
        for gen_id in gen_ids:
            gen = self.get(gen_id)
            kinds = [event.kind for event in gen.events][-8:]
            lines.append(
                f"{gen_id} {gen.status} upstream={gen.upstream_request_id} "
                f"next_poll_at={gen.next_poll_at} lease_until={gen.lease_until} events={kinds}"
            )
        with self.sessions() as session:
            live = session.execute(
                select(Generation.status, func.count())
                .where(Generation.status.notin_(list(TERMINAL)))
                .group_by(Generation.status)
            ).all()
        lines.append(f"live jobs of every tenant: {dict((s, n) for s, n in live)}")
        return "\n".join(lines)

    def submits(self, gen: Generation) -> list[dict[str, Any]]:
        """The simulator's accepted submits whose prompt is this job's."""
        prompt = gen.input["prompt"]
        return [
            s
            for s in self.stack.sim.submits(self.marker)
            if s["request_id"] and s["body"]["prompt"] == prompt
        ]


def settle_leftovers(
    sessions: sessionmaker[Session], celery: Celery, *, timeout: float = 90.0
) -> None:
    """Let the jobs an earlier test left live on a shared stack end before the next test starts,
    and cancel what has not ended in half of ``timeout``: a test that narrows the simulator
    (capacity 1, long run times) must not start behind another test's queue, whichever tests
    ran before it (the order differs between a whole run and a file alone)."""

    def live() -> list[uuid.UUID]:
        with sessions() as session:
            return list(
                session.scalars(
                    select(Generation.id).where(Generation.status.notin_(list(TERMINAL)))
                ).all()
            )

    if not live():
        return
    try:
        wait_until(lambda: not live(), timeout / 2, interval=0.2, what="earlier tests' jobs")
    except TimeoutError:
        for gen_id in live():
            celery.send_task(tasknames.CANCEL, args=[str(gen_id)], queue=tasknames.QUEUE)
        wait_until(
            lambda: not live(), timeout / 2, interval=0.2, what="earlier tests' jobs, cancelled"
        )


def assert_exactly_once(jobs: Jobs, gen: Generation) -> None:
    """Submitted upstream exactly once, unless an ambiguous submit was recorded for it."""
    ambiguous = [e for e in gen.events if e.kind == "submit_ambiguous"]
    accepted = jobs.submits(gen)
    if ambiguous:
        assert 1 <= len(accepted) <= 1 + len(ambiguous), (gen.id, accepted)
    else:
        assert len(accepted) == 1, (gen.id, gen.status, [e.kind for e in gen.events])
    if gen.upstream_request_id:
        assert gen.upstream_request_id in {s["request_id"] for s in accepted}


def assert_result_as_produced(gen: Generation) -> None:
    """What genqueue recorded is what the upstream (simulator) holds for that request."""
    if not gen.upstream_request_id or not gen.response_url:
        return
    if gen.status == "completed" or (gen.error or {}).get("type") == "upstream_error":
        answer = httpx.get(gen.response_url, headers={"Authorization": f"Key {UPSTREAM_KEY}"})
        if gen.status == "completed":
            assert answer.status_code == 200, gen.id
            assert gen.result == answer.json(), gen.id
        else:
            assert gen.error is not None
            assert (gen.error["http_status"], gen.error["body"]) == (
                answer.status_code,
                answer.json(),
            ), gen.id


def assert_invariants(
    jobs: Jobs, ids: list[uuid.UUID], *, timeout: float = 120
) -> list[Generation]:
    gens = jobs.wait(ids, timeout=timeout)  # every job terminal: none stuck
    for gen in gens:
        assert_exactly_once(jobs, gen)
        assert_result_as_produced(gen)
    return gens
