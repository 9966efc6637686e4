"""The simulator: all state behind one lock, advanced lazily from an injectable clock."""

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from simulator import answers
from simulator.admission import admit, submit_record
from simulator.calls import Call, authorized
from simulator.config import SimulatorConfig
from simulator.engine import JobQueue
from simulator.faults import CALL_KINDS, FaultBook, FaultRule
from simulator.images import ImageCache, image_file
from simulator.jobs import Job, JobState
from simulator.models import model_for, run_scale
from simulator.payloads import job_info, media_bytes, status_body, submit_body, webhook_payload
from simulator.replies import Reply, detail, fault_reply
from simulator.signing import WebhookSigner
from simulator.store import JobStore
from simulator.validation import gen_params, parse_json_body
from simulator.webhooks import WebhookSender

Clock = Callable[[], float]
OPS = ("submit", "status", "result", "cancel")
KEY_FILE = "webhook-key.pem"
"""With a store: the webhook signing key, beside the jobs, so a restart keeps it."""
#: (url, payload, copies) of a webhook due for delivery.
WebhookDelivery = tuple[str, dict[str, Any], int]


class Simulator:
    """A fal queue in memory. Thread-safe; every public method takes the lock once.

    ``clock`` is monotonic seconds (default ``time.monotonic``); wall-clock times reported by
    ``request_info``/``submits`` are ``wall_clock()`` at construction plus elapsed clock time.
    With a ``store``, the jobs of an earlier run are taken back and every change is written
    before the call that made it returns (counters, submits and faults are not kept).
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        store: JobStore | None = None,
    ) -> None:
        self._config = config or SimulatorConfig()
        self._clock = clock or time.monotonic
        self._mono0 = self._clock()
        self._wall0 = (wall_clock or time.time)()
        self._lock = threading.Lock()
        self._images = ImageCache()
        self._outbox: list[WebhookDelivery] = []
        signer = WebhookSigner(key_file=store.directory / KEY_FILE if store is not None else None)
        self._webhooks = WebhookSender(
            self.take_webhooks, config=lambda: self._config, signer=signer
        )
        self._store = store
        self._dirty: dict[str, Job] = {}
        self._reset_state()
        if store is not None:
            self._restore(store)

    # ----------------------------------------------------------------- admin API
    @property
    def config(self) -> SimulatorConfig:
        return self._config

    def configure(self, **fields: Any) -> SimulatorConfig:
        """Change runtime settings (run_time, capacity, validate, auth, ...); returns the result."""
        with self._changing():
            now = self._clock()
            self._queue.advance(now, self._config.capacity)
            self._config = self._config.replace(**fields)
            self._queue.advance(now, self._config.capacity)  # start jobs a wider capacity admits
            return self._config

    def add_fault(self, rule: FaultRule | dict[str, Any]) -> FaultRule:
        parsed = rule if isinstance(rule, FaultRule) else FaultRule.model_validate(rule)
        with self._lock:
            self._faults.add(parsed)
        return parsed

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return self._faults.rules()

    def reset(self) -> None:
        """Forget all jobs, counters and faults; the configuration stays."""
        with self._changing():
            self._reset_state()
            if self._store is not None:
                self._store.clear()
        self._images.clear()
        self._webhooks.reset()

    def request_info(self, request_id: str) -> dict[str, Any] | None:
        """A job's lifecycle and per-op call counts, or None when unknown."""
        with self._changing():
            self._advance()
            job = self._jobs.get(request_id)
            if job is None:
                return None
            position = self._queue.position(job) if job.state is JobState.IN_QUEUE else None
            info = job_info(job, position, self._wall_of)
        info["webhooks"] = self._webhooks.attempts(request_id)
        return info

    def submits(self) -> list[dict[str, Any]]:
        """Every submit accepted or rejected at validation, oldest first."""
        with self._lock:
            return [dict(record) for record in self._submits]

    def jwks(self) -> dict[str, Any] | None:
        """The public keys webhooks are signed with; None while ``jwks_down``."""
        return None if self._config.jwks_down else self._webhooks.signer.jwks()

    def rotate_webhook_key(self) -> str:
        """Sign webhooks with a new key from now on (the JWKS lists only it); its ``kid``."""
        return self._webhooks.signer.rotate()

    @property
    def webhook_signer(self) -> WebhookSigner:
        return self._webhooks.signer

    def stats(self) -> dict[str, Any]:
        webhooks = self._webhooks.counts()
        with self._changing():
            self._advance()
            return {
                "webhooks": webhooks,
                "calls": {op: self._calls[op] for op in OPS},
                "responses": dict(self._responses),
                "jobs": {
                    "in_queue": self._queue.queued,
                    "in_progress": self._queue.running,
                    "completed": self._queue.completed,
                },
            }

    def close(self) -> None:
        """Stop background webhook delivery (the state stays readable, not stored)."""
        self._webhooks.close()
        with self._changing():
            self._advance()  # store the state as of now
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    def advance(self) -> None:
        """Bring the queue up to the clock's now (calls do this themselves)."""
        with self._changing():
            self._advance()

    # ----------------------------------------------------------------- queue API
    def handle(self, call: Call, *, replay: bool = False) -> Reply:
        """Answer one queue call; ``replay`` answers a held call again without counting it."""
        reply = self._handle(call, replay=replay)
        if call.op == "submit" and reply.status_code == 200 and call.query.get("fal_webhook"):
            self._webhooks.wake()
        return reply

    def _handle(self, call: Call, *, replay: bool) -> Reply:
        parsed: Any = None
        parse_errors: list[dict[str, Any]] | None = None
        if call.op == "submit":
            parsed, parse_errors = parse_json_body(call.body)
        with self._changing():
            now = self._advance()
            job = self._jobs.get(call.request_id) if call.request_id is not None else None
            if job is not None and job.app != call.app:
                job = None
            if not replay:
                self._calls[call.op] += 1
                if job is not None:
                    job.calls[call.op] += 1
                    job.call_log.append((call.op, call.caller, now))
                    self._touch(job)
                prompt = job.params.prompt if job is not None else gen_params(parsed).prompt
                rule = self._faults.take(call.op, CALL_KINDS, prompt)
                if rule is not None:
                    return self._count(call, fault_reply(rule, call.op))
            if not authorized(self._config.auth, call.authorization):
                reply = detail(401, "Unauthorized")
            elif call.op == "submit":
                reply = self._submit(call, parsed, parse_errors, now)
            elif job is None:
                reply = self._unknown(call)
            else:
                reply = self._answer(call, job, now)
            return reply if replay else self._count(call, reply)

    def status_snapshot(
        self, request_id: str, app: str, base: str, *, logs: bool
    ) -> dict[str, Any] | None:
        """Current status JSON of a job (uncounted; for the SSE stream)."""
        with self._changing():
            self._advance()
            job = self._jobs.get(request_id)
            if job is None or job.app != app:
                return None
            position = self._queue.position(job) if job.state is JobState.IN_QUEUE else None
            return status_body(job, base, position, logs=logs, wall=self._wall_of)

    def file_fault(self, request_id: str) -> FaultRule | None:
        """The first ``file`` fault rule that applies to a GET of this job's image, used up."""
        with self._changing():
            job = self._jobs.get(request_id)
            self._calls["file"] += 1
            prompt = job.params.prompt if job is not None else None
            return self._faults.take("file", CALL_KINDS, prompt, ops=frozenset({"file"}))

    def image(self, request_id: str, name: str) -> tuple[bytes, str] | None:
        """Bytes and content type of a finished job's image ``{index}.{ext}``, rendered once."""
        with self._changing():
            self._advance()
            job = self._jobs.get(request_id)
            if job is None or job.state is not JobState.COMPLETED or job.error is not None:
                return None
            params, seed = job.params, job.seed
        if model_for(job.endpoint).kind in ("video", "audio"):
            return media_bytes(job, name)
        return image_file(self._images, request_id, name, params=params, seed=seed)

    def take_webhooks(self) -> tuple[list[WebhookDelivery], int]:
        """Advance, then hand over due webhook deliveries and how many jobs still await one."""
        with self._changing():
            self._advance()
            due, self._outbox = self._outbox, []
            return due, self._webhooks_pending

    # ----------------------------------------------------------------- internals
    @contextmanager
    def _changing(self) -> Iterator[None]:
        """Hold the lock; store what changed before letting go."""
        with self._lock:
            try:
                yield
            finally:
                if self._dirty and self._store is not None:
                    self._store.save(self._dirty.values(), to_wall=self._wall_of)
                self._dirty.clear()

    def _touch(self, job: Job) -> None:
        if self._store is not None:
            self._dirty[job.request_id] = job

    def _restore(self, store: JobStore) -> None:
        now_wall = self._wall_of(self._clock())
        jobs = store.load(now_wall=now_wall, to_clock=self._clock_of)
        with self._changing():
            self._jobs.update((job.request_id, job) for job in jobs)
            self._queue.restore(jobs)
            self._webhooks_pending = sum(
                1 for job in jobs if job.webhook_url is not None and job.ended is None
            )
            self._advance()  # what fell due while the simulator was down
        if self._webhooks_pending or self._outbox:
            self._webhooks.wake()

    def _reset_state(self) -> None:
        self._rng = random.Random(self._config.seed)
        self._jobs: dict[str, Job] = {}
        self._queue = JobQueue(
            self._run_time, self._on_end, self._touch if self._store is not None else None
        )
        self._faults = FaultBook(self._rng)
        self._calls: Counter[str] = Counter()
        self._responses: Counter[str] = Counter()
        self._submits: list[dict[str, Any]] = []
        self._outbox = []
        self._webhooks_pending = 0

    def _advance(self) -> float:
        now = self._clock()
        self._queue.advance(now, self._config.capacity)
        return now

    def _wall_of(self, t: float) -> float:
        return self._wall0 + (t - self._mono0)

    def _clock_of(self, wall: float) -> float:
        return self._mono0 + (wall - self._wall0)

    def _run_time(self, job: Job) -> float:
        """``run_time`` (± jitter), times the model's catalogue run time over the seed's."""
        cfg = self._config
        scale = run_scale(job.endpoint)
        if not cfg.run_time_jitter:
            return cfg.run_time * scale
        jitter = self._rng.uniform(-cfg.run_time_jitter, cfg.run_time_jitter)
        return max(0.0, (cfg.run_time + jitter) * scale)

    def _on_end(self, job: Job) -> None:
        if job.webhook_url is None:
            return
        self._webhooks_pending -= 1
        copies = 2 if job.duplicate_webhook else 1
        self._outbox.append((job.webhook_url, webhook_payload(job, job.base_url), copies))

    def _count(self, call: Call, reply: Reply) -> Reply:
        self._responses[f"{call.op}:{reply.label}"] += 1
        return reply

    def _unknown(self, call: Call) -> Reply:
        if call.op == "cancel":
            return Reply(404, {"status": "NOT_FOUND"})
        return detail(404, answers.NOT_FOUND)

    def _answer(self, call: Call, job: Job, now: float) -> Reply:
        base = self._config.public_url or call.base_url
        if call.op == "status" and call.stream:
            headers = {answers.REQUEST_ID_HEADER: job.request_id}
            return Reply(200, None, headers, "text/event-stream", label="stream")
        if call.op == "status":
            position = self._queue.position(job) if job.state is JobState.IN_QUEUE else None
            return answers.status_reply(
                job, base, position, logs=call.wants_logs, wall=self._wall_of
            )
        if call.op == "cancel":
            reply = answers.cancel_reply(job)
            if reply.status_code == 202:
                cfg = self._config
                self._queue.cancel(job, now, cfg.capacity, cfg.honor_cancel)
                self._touch(job)
            return reply
        expired = job.result_expired or (
            job.ended is not None and now - job.ended > self._config.result_ttl
        )
        if not expired and job.state is JobState.COMPLETED:
            rule = self._faults.take(
                "result", frozenset({"expire_result"}), job.params.prompt, ops=frozenset({"result"})
            )
            if rule is not None:
                job.result_expired = expired = True
                self._touch(job)
        return answers.result_reply(job, base, expired=expired)

    def _submit(
        self,
        call: Call,
        body: Any,
        parse_errors: list[dict[str, Any]] | None,
        now: float,
    ) -> Reply:
        cfg = self._config
        job, reply = admit(
            call, body, parse_errors, config=cfg, now=now, rng=self._rng, faults=self._faults
        )
        if job is not None:
            if job.webhook_url is not None:
                self._webhooks_pending += 1
            job.call_log.append(("submit", call.caller, now))
            self._jobs[job.request_id] = job
            self._queue.submit(job, now, cfg.capacity)
            self._touch(job)
            position = self._queue.position(job) if job.state is JobState.IN_QUEUE else 0
            reply.body = submit_body(job, job.base_url, position)
        request_id = None if job is None else job.request_id
        record = submit_record(call, body, request_id, reply.status_code, self._wall_of(now))
        self._submits.append(record)
        return reply
