"""Status streams: N clients stream the status of one queued job; how much CPU the API process
spends and how many transactions per second the database runs, for genqueue's streams (one
shared check per interval) and, in the same run, the pre-issue-19 way (one check per stream
per interval, ``benchmarks/stream_baseline.py``).

    python -m benchmarks.streams [--streams 400] [--seconds 10]

Needs PostgreSQL (``GENQUEUE_BENCH_PG``, default the machine's). Prints one line per variant.
"""

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
import psutil
import psycopg

from benchmarks.processes import Proc
from benchmarks.services import private_database
from genqueue.net import free_port, wait_until
from models.db import make_engine, make_session_factory
from models.generations import NewGeneration, insert_generations
from models.keys import create_key

MODEL = "fal-ai/flux-pro/kontext/text-to-image"
SETTLE_SECONDS = 12.0


def _job(url: str) -> tuple[str, str]:
    """A key and one pending generation of its tenant."""
    engine = make_engine(url)
    with make_session_factory(engine).begin() as session:
        key, plain = create_key(session, name="streams", tenant_name="streams")
        [row] = insert_generations(
            session,
            [NewGeneration(key.tenant_id, MODEL, {"prompt": "watched"})],
            now=datetime.now(UTC),
            deadline_seconds=3600,
            submit_grace_seconds=3600,
        )
    engine.dispose()
    return plain, str(row.id)


def _transactions(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return int(row[0])


async def _hold(
    url: str, headers: dict[str, str], count: int, seconds: float, measure: "Measure"
) -> None:
    """Open ``count`` streams, wait for each one's first event, then measure for ``seconds``."""
    limits = httpx.Limits(max_connections=count + 10)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        opened = asyncio.Event()
        ready = 0

        async def one() -> None:
            nonlocal ready
            async with client.stream("GET", url, headers=headers) as response:
                assert response.status_code == 200, await response.aread()
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        ready += 1
                        if ready == count:
                            opened.set()
                    if measure.done:
                        return

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await asyncio.wait_for(opened.wait(), 120)
        # A backend reports its transactions to pg_stat up to 10 s late when it goes idle: the
        # opening burst must be counted before the window, and the window is steady state.
        await asyncio.sleep(SETTLE_SECONDS)
        measure.start()
        await asyncio.sleep(seconds)
        measure.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Measure:
    def __init__(self, pid: int, db_url: str) -> None:
        self.proc = psutil.Process(pid)
        self.db_url = db_url
        self.done = False
        self.cores = self.tx_per_s = 0.0

    def _cpu(self) -> float:
        times = self.proc.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self._cpu0, self._tx0, self._t0 = self._cpu(), _transactions(self.db_url), time.monotonic()

    def stop(self) -> None:
        elapsed = time.monotonic() - self._t0
        self.cores = (self._cpu() - self._cpu0) / elapsed
        self.tx_per_s = (_transactions(self.db_url) - self._tx0) / elapsed
        self.done = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streams")
    parser.add_argument("--streams", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    with private_database() as db_url, TemporaryDirectory() as tmp:
        key, rid = _job(db_url)
        port = free_port()
        env = {
            **os.environ,
            "GENQUEUE_DATABASE_URL": db_url,
            "GENQUEUE_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing is published
            "GENQUEUE_DATA_DIR": tmp,
            "GENQUEUE_STREAM_MAX_PER_KEY": str(args.streams),
            "GENQUEUE_LOG_LEVEL": "WARNING",
        }
        code = (
            "from api.main import serve; "
            f"serve('127.0.0.1', {port}, factory='benchmarks.stream_baseline:baseline_app')"
        )
        api = Proc("api", [sys.executable, "-c", code], env, Path(tmp)).start()
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 60, what="the API")
            path = f"fal-ai/flux-pro/requests/{rid}/status/stream"
            headers = {"Authorization": f"Key {key}"}
            print(
                f"{args.streams} streams on one queued job, {args.seconds:g} s, poll interval 0.5 s"
            )
            for name, url in (
                ("genqueue (one shared check)", f"{base}/{path}"),
                ("before (a check per stream)", f"{base}/baseline/{path}"),
            ):
                measure = Measure(api.pid, db_url)
                asyncio.run(_hold(url, headers, args.streams, args.seconds, measure))
                print(
                    f"  {name:28} API process {measure.cores:5.2f} cores, "
                    f"database {measure.tx_per_s:7.1f} transactions/s"
                )
        finally:
            api.stop(grace=5)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
