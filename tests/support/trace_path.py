"""Which of genqueue's files a reader must open to follow one generation from the route to
``completed``: the files whose functions run on the way.

    python -m tests.support.trace_path

One ``POST /fal-ai/flux-pro/kontext/text-to-image`` goes through the API in-process (a
TestClient on a fresh PostgreSQL database of its own, a recording publisher instead of the
broker); then the worker's lifecycle functions, called as its tasks call them, submit it to the
simulator over real HTTP and poll it until it is ``completed``. Every function call in
``api/``, ``worker/`` and ``models/`` is recorded, on every thread (the intake's writer, the
submit and poll threads); module bodies run at import, before the trace starts, and do not
count. A warm-up request first keeps one-off work (the engine, the key lookup) out of the count.

The worker's entry points are imported by name below (as ``worker/tasks.py`` calls them): when
they move, change them there; ``tests/support/test_trace_path.py`` runs this trace, so a stale
name fails the suite.
"""

import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from migrations.runner import upgrade
from models import tasknames
from models.db import make_engine, make_session_factory
from models.keys import create_key
from models.settings import Settings
from models.status import TERMINAL, GenerationStatus
from models.tables import Generation
from simulator import SimulatorConfig, SimulatorServer
from tests.api.support import RecordingPublisher
from tests.support.services import postgres_database
from worker.backoff import BackoffPolicy
from worker.context import Limits, WorkerContext
from worker.lifecycle.dispatch import dispatch_due
from worker.lifecycle.poll import poll_generations
from worker.lifecycle.submit_batch import submit_generations
from worker.upstream import UpstreamClient

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "models", "worker")
MODEL = "fal-ai/flux-pro/kontext/text-to-image"
BODY = {
    "prompt": "a tiger eye",
    "guidance_scale": 3.5,
    "num_images": 1,
    "output_format": "jpeg",
    "safety_tolerance": "2",
    "aspect_ratio": "1:1",
}
UPSTREAM_KEY = "trace-key"
TIMEOUT = 30.0


class Tracer:
    """Records the project files whose functions are called while it is on."""

    def __init__(self, root: Path = ROOT, packages: Sequence[str] = PACKAGES) -> None:
        self._dirs = tuple(str(root / p) + os.sep for p in packages)
        self._root = root
        self._lock = threading.Lock()
        self._on = False
        self.files: set[str] = set()

    def _profile(self, frame: FrameType, event: str, _arg: object) -> None:
        if not self._on or event != "call":
            return
        path = frame.f_code.co_filename
        if path.startswith(self._dirs) and frame.f_code.co_name != "<module>":
            with self._lock:
                self.files.add(str(Path(path).relative_to(self._root)))

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Profile this thread and every thread started meanwhile (recording only while on)."""
        sys.setprofile(self._profile)
        threading.setprofile(self._profile)
        try:
            yield
        finally:
            sys.setprofile(None)
            threading.setprofile(None)

    @contextmanager
    def recording(self) -> Iterator[set[str]]:
        """Record into a fresh set, yielded now and filled by the time the block ends."""
        found: set[str] = set()
        with self._lock:
            self.files, self._on = found, True
        try:
            yield found
        finally:
            with self._lock:
                self._on = False


@dataclass
class Trace:
    api: set[str] = field(default_factory=set)
    worker: set[str] = field(default_factory=set)
    status: str = ""

    @property
    def total(self) -> set[str]:
        return self.api | self.worker


def _api_part(
    tracer: Tracer, url: str, sessions: sessionmaker[Session], data_dir: Path
) -> tuple[set[str], uuid.UUID, list[uuid.UUID]]:
    """The POST, through the API: the generation's id and the ids published to the worker."""
    with sessions.begin() as session:
        _, key = create_key(session, name="trace")
    publisher = RecordingPublisher()
    settings = Settings(database_url=url, broker_url="redis://127.0.0.1:1/0", data_dir=data_dir)
    headers = {"Authorization": f"Key {key}"}
    with TestClient(create_app(settings, publisher=publisher)) as client:
        client.post(f"/{MODEL}", json=BODY, headers=headers).raise_for_status()  # warm-up
        publisher.published.clear()
        with tracer.recording() as files:
            answer = client.post(f"/{MODEL}", json=BODY, headers=headers)
    answer.raise_for_status()
    published = [
        uuid.UUID(i)
        for name, args in publisher.published
        if name == tasknames.SUBMIT_MANY
        for i in args[0]
    ]
    return files, uuid.UUID(answer.json()["request_id"]), published


def _worker_part(
    tracer: Tracer, sessions: sessionmaker[Session], generation_id: uuid.UUID, ids: list[uuid.UUID]
) -> tuple[set[str], str]:
    """The worker's tasks, called in-process: the submit wave, then beat's dispatch ticks and
    the poll batches they publish, until the generation has ended."""
    sent: list[tuple[str, list[Any]]] = []
    config = SimulatorConfig(run_time=0.3, capacity=None, auth=f"Key {UPSTREAM_KEY}")
    with (
        SimulatorServer(config) as simulator,
        UpstreamClient(base_url=simulator.url, key=UPSTREAM_KEY) as upstream,
    ):
        ctx = WorkerContext(
            sessions=sessions,
            client=upstream,
            publish=lambda name, args: sent.append((name, list(args))),
            policy=BackoffPolicy(min_delay=0.05, max_delay=0.3, jitter=0.0),
            limits=Limits(lease_seconds=5.0, submit_grace=0.5),
        )
        deadline = time.monotonic() + TIMEOUT
        with tracer.recording() as files:
            submit_generations(ctx, ids)
            while (status := _status(sessions, generation_id)) not in TERMINAL:
                if time.monotonic() > deadline:
                    break
                dispatch_due(ctx)
                for name, args in sent:
                    if name == tasknames.POLL_BATCH:
                        poll_generations(ctx, [uuid.UUID(i) for i in args[0]], args[1])
                sent.clear()
                time.sleep(0.05)
    return files, status.value


def _status(sessions: sessionmaker[Session], generation_id: uuid.UUID) -> GenerationStatus:
    with sessions() as session:
        gen = session.get(Generation, generation_id)
        assert gen is not None, f"generation {generation_id} is gone"
        return GenerationStatus(gen.status)


def trace() -> Trace:
    """Follow one generation; ``status`` is where it ended (``completed`` unless it timed out)."""
    tracer = Tracer()
    with (
        postgres_database() as url,
        tempfile.TemporaryDirectory(prefix="gq-trace-") as data_dir,
    ):
        upgrade(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        try:
            with tracer.installed():
                api, generation_id, ids = _api_part(tracer, url, sessions, Path(data_dir))
                worker, status = _worker_part(tracer, sessions, generation_id, ids)
        finally:
            engine.dispose()
    return Trace(api=api, worker=worker, status=status)


def report(result: Trace) -> str:
    lines = []
    for title, files in (("API", result.api), ("worker", result.worker)):
        lines.append(f"{title}: {len(files)} files")
        lines.extend(f"  {f}" for f in sorted(files))
    lines.append(f"generation ended {result.status}")
    lines.append(f"distinct files, API and worker together: {len(result.total)}")
    return "\n".join(lines)


def main() -> None:
    result = trace()
    print(report(result))
    if result.status != GenerationStatus.COMPLETED:
        sys.exit(f"the generation did not complete (it is {result.status})")


if __name__ == "__main__":
    main()
