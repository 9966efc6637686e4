"""``python -m benchmarks.loadgen``: a closed-loop HTTP load generator in its own process.

``--concurrency`` clients, each on one keep-alive connection, POST a small generation body back
to back. Requests answered during ``--warmup`` are not measured; measuring stops after
``--duration`` seconds or ``--max-requests`` answers. Prints one JSON object on stdout.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from typing import Any

from benchmarks.rawhttp import Connection, HttpError
from benchmarks.stats import percentile
from benchmarks.submitter import create_body

KEY_ENV = "GENQUEUE_BENCH_API_KEY"
CONNECT_GAP = 0.002
"""Seconds between opening two clients' connections."""
"""The API key comes from the environment, not argv (which ``ps`` shows)."""


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    key = os.environ.get(KEY_ENV, "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors = 0

    conns = [Connection(args.host, args.port, headers=headers) for _ in range(args.concurrency)]
    for conn in conns:
        # One at a time, as a client's pool grows: uvicorn's processes share one listening
        # socket and asyncio accepts everything pending when it wakes, so a burst of connects
        # went to one process (50 of 50 in one run, 13/37 and 20/30 in others), moving
        # throughput by half between runs, bare endpoint included.
        await conn.connect()
        await asyncio.sleep(CONNECT_GAP)
    started = time.perf_counter()
    measure_from = started + args.warmup
    stop_at = measure_from + args.duration
    hard_stop = stop_at + 30.0  # a request still open this long after the end is abandoned

    async def client(n: int) -> None:
        nonlocal errors
        conn = conns[n]
        body = create_body(f"load {n}")
        try:
            while True:
                now = time.perf_counter()
                if now >= stop_at or len(latencies) >= args.max_requests:
                    return
                try:
                    answer = await asyncio.wait_for(
                        conn.request("POST", args.path, body), hard_stop - now
                    )
                except (HttpError, OSError, TimeoutError):
                    errors += 1
                    await asyncio.sleep(0.01)
                    continue
                done = time.perf_counter()
                if now >= measure_from and done <= stop_at:
                    latencies.append(done - now)
                    statuses[answer.status] += 1
        finally:
            await conn.close()

    await asyncio.gather(*(client(n) for n in range(args.concurrency)))
    window = min(time.perf_counter(), stop_at) - measure_from
    ok = sum(n for code, n in statuses.items() if 200 <= code < 300)
    return {
        "concurrency": args.concurrency,
        "requests": len(latencies),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors,
        "seconds": round(window, 3),
        "requests_per_second": ok / window if window > 0 else 0.0,
        "p50_ms": 1000 * percentile(latencies, 50),
        "p90_ms": 1000 * percentile(latencies, 90),
        "p99_ms": 1000 * percentile(latencies, 99),
        "max_ms": 1000 * max(latencies, default=0.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/generations")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    args = parser.parse_args(argv)
    json.dump(asyncio.run(_run(args)), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
