"""An in-process driver for lifecycle tests: the real functions, a real database and the
simulator over real HTTP, with the Celery hop replaced by calling the published task's body."""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from models.keys import create_key
from models.secretbox import SecretBox
from models.status import TERMINAL, GenerationStatus
from models.tables import Generation
from simulator import SimulatorConfig, SimulatorServer
from tests.support.generations import create_generation
from worker.backoff import BackoffPolicy
from worker.context import Limits, Observer, WorkerContext
from worker.lifecycle.dispatch import dispatch_due
from worker.lifecycle.poll import poll_generations
from worker.lifecycle.reconcile import reconcile
from worker.lifecycle.submit_batch import submit_generations
from worker.lifecycle.submit_outcome import SubmitResult
from worker.upstream import UpstreamClient

MODEL = "fal-ai/flux-pro/kontext/text-to-image"
KEY = "lifecycle-key-0b1c"
BOX = SecretBox("lifecycle-master-secret-" + "x" * 32)
FAST = BackoffPolicy(
    min_delay=0.05, max_delay=0.3, jitter=0.0, error_min_delay=0.05, error_max_delay=0.3
)


@dataclass
class Recorder:
    published: list[tuple[str, list[Any]]] = field(default_factory=list)

    def __call__(self, task_name: str, args: Any) -> None:
        self.published.append((task_name, list(args)))

    def drain(self) -> list[tuple[str, list[Any]]]:
        out, self.published = self.published, []
        return out


@contextmanager
def lifecycle_env(
    sessions: sessionmaker[Session], *, limits: Limits | None = None, **sim_config: Any
) -> Iterator[tuple[WorkerContext, SimulatorServer, Recorder]]:
    config = SimulatorConfig(
        **{"run_time": 0.3, "capacity": None, "auth": f"Key {KEY}", **sim_config}
    )
    with SimulatorServer(config) as srv:
        client = UpstreamClient(
            base_url=srv.url, key=KEY, auth_scheme="Key", connect_timeout=2.0, read_timeout=1.0
        )
        recorder = Recorder()
        ctx = WorkerContext(
            sessions=sessions,
            client=client,
            publish=recorder,
            policy=FAST,
            limits=limits
            or Limits(
                lease_seconds=5.0, submit_grace=0.5, max_submit_attempts=4, max_poll_errors=6
            ),
            secret_box=lambda: BOX,
        )
        try:
            yield ctx, srv, recorder
        finally:
            client.close()


def new_job(
    ctx: WorkerContext, *, prompt: str = "a lighthouse", deadline: float = 60.0, **input: Any
) -> uuid.UUID:
    with ctx.sessions.begin() as session:
        key, _ = create_key(session, name=f"lc-{uuid.uuid4().hex[:8]}")
        gen = create_generation(
            session,
            tenant_id=key.tenant_id,
            model=MODEL,
            input={"prompt": prompt, **input},
            now=datetime.now(UTC),
            deadline_seconds=deadline,
            submit_grace_seconds=0.5,
        )
        return gen.id


def load(ctx: WorkerContext, gen_id: uuid.UUID) -> Generation:
    with ctx.sessions() as session:
        gen = session.get(Generation, gen_id)
        assert gen is not None
        _ = gen.events  # load while the session is open
        return gen


def submit_one(ctx: WorkerContext, generation_id: uuid.UUID) -> SubmitResult:
    """``generation.submit_many`` for one id, as the API publishes a lone create: the row's
    ``SubmitResult``."""
    [(result, count)] = submit_generations(ctx, [generation_id]).items()
    assert count == 1
    return SubmitResult(result)


def run_published(ctx: WorkerContext, recorder: Recorder) -> int:
    """Execute what the lifecycle published, as the worker would."""
    ran = 0
    for name, args in recorder.drain():
        ran += 1
        if name == "generation.submit_many":
            submit_generations(ctx, [uuid.UUID(i) for i in args[0]])
        elif name == "generation.poll_batch":
            poll_generations(ctx, [uuid.UUID(i) for i in args[0]], args[1])
    return ran


def drive(
    ctx: WorkerContext,
    recorder: Recorder,
    gen_id: uuid.UUID,
    *,
    timeout: float = 15.0,
    until: frozenset[GenerationStatus] | set[GenerationStatus] = TERMINAL,
) -> Generation:
    """Tick dispatcher and reconciler like beat does until the job reaches ``until``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatch_due(ctx)
        reconcile(ctx)
        run_published(ctx, recorder)
        gen = load(ctx, gen_id)
        if GenerationStatus(gen.status) in until:
            return gen
        time.sleep(0.02)
    raise AssertionError(f"{gen_id} stuck in {load(ctx, gen_id).status}")


def upstream_calls(srv: SimulatorServer, gen: Generation) -> dict[str, int]:
    """How often the simulator was called for the generation's upstream request, by op."""
    assert gen.upstream_request_id is not None, "never accepted upstream"
    info = srv.sim.request_info(gen.upstream_request_id)
    assert info is not None, f"the simulator does not know {gen.upstream_request_id}"
    return dict(info["calls"])


def kinds(gen: Generation) -> list[str]:
    return [e.kind for e in gen.events]


class RecordingObserver(Observer):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def submit_outcome(self, outcome: str) -> None:
        self.events.append(("submit", outcome))

    def retry(self, operation: str) -> None:
        self.events.append(("retry", operation))

    def terminal(self, status: str, created_at: datetime, now: datetime) -> None:
        assert now >= created_at
        self.events.append(("terminal", status))
