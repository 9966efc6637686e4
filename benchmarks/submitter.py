"""Submit N generations through the API as fast as it accepts them (bounded in count and time)."""

import asyncio
import json
import time
from dataclasses import dataclass, field

from benchmarks.rawhttp import Connection, HttpError
from benchmarks.scale import Scale

MODEL = "fal-ai/flux-pro/kontext/text-to-image"
PATH = "/v1/generations"
MAX_ATTEMPTS = 3


@dataclass
class Submission:
    ids: list[str] = field(default_factory=list)
    started_at: float = 0.0
    """Wall-clock time (``time.time()``) just before the first POST."""
    finished_at: float = 0.0
    """Wall-clock time of the last accepted answer."""
    errors: int = 0
    """Answers other than 201 and lost connections (each was retried, up to three attempts)."""
    latencies: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max(self.finished_at - self.started_at, 1e-9)

    @property
    def accepted_per_second(self) -> float:
        return len(self.ids) / self.seconds


def create_body(prompt: str) -> bytes:
    return json.dumps({"model": MODEL, "input": {"prompt": prompt}}).encode()


def submit_generations(
    *,
    host: str,
    port: int,
    key: str,
    count: int,
    concurrency: int,
    prompt: str,
    time_limit: float,
) -> Submission:
    return asyncio.run(_submit_all(host, port, key, count, concurrency, prompt, time_limit))


def post_wave(port: int, scale: Scale, *, key: str, count: int, prompt: str) -> Submission:
    """``count`` generations POSTed to the stack's API at ``scale``'s concurrency and limit."""
    return submit_generations(
        host="127.0.0.1",
        port=port,
        key=key,
        count=count,
        concurrency=scale.submit_concurrency,
        prompt=prompt,
        time_limit=scale.phase_timeout,
    )


async def _submit_all(
    host: str, port: int, key: str, count: int, concurrency: int, prompt: str, time_limit: float
) -> Submission:
    result = Submission()
    todo = iter(range(count))
    deadline = time.monotonic() + time_limit
    result.started_at = time.time()

    async def client() -> None:
        conn = Connection(host, port, headers={"Authorization": f"Bearer {key}"})
        try:
            for n in todo:
                if time.monotonic() > deadline:
                    return
                await _submit_one(conn, create_body(f"{prompt} #{n}"), result)
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(max(1, min(concurrency, count)))))
    return result


async def _submit_one(conn: Connection, body: bytes, result: Submission) -> None:
    for _ in range(MAX_ATTEMPTS):
        began = time.perf_counter()
        try:
            answer = await conn.request("POST", PATH, body)
        except (HttpError, OSError):
            result.errors += 1
            await asyncio.sleep(0.05)
            continue
        if answer.status == 201:
            result.latencies.append(time.perf_counter() - began)
            result.ids.append(str(answer.json()["id"]))
            result.finished_at = time.time()
            return
        result.errors += 1
        await asyncio.sleep(0.05)
