"""A burst of fal webhooks at the API alone: ``python -m benchmarks.webhook_burst [--webhooks N]
[--concurrency C] [--rounds R]``.

B4 measures webhooks end to end, behind the simulator's own sending threads; this isolates the
API's part, what issue 11 bounds at p99 0.5 s: N jobs already upstream (``running``, each with
its request id) on a fresh database, then N signed webhooks POSTed at once, ``C`` at a time, as
fal sends a burst of jobs that ended together. Each webhook's lag is from the moment its POST
began to its job's ``completed_at``; the API's CPU (its process tree) is divided by N. The keys
are this process's own (an ED25519 key, its JWKS served on a loopback port). Rounds repeat the
burst on fresh jobs, against the same API, to show the spread on a shared machine.
"""

import argparse
import asyncio
import json
import logging
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from benchmarks.processes import Proc, TreeSampler, stop_all
from benchmarks.rawhttp import Connection
from benchmarks.services import private_database
from benchmarks.stats import percentile
from genqueue.net import free_port, wait_until
from models.db import make_engine, make_session_factory
from models.keys import create_key
from models.tables import GENERATIONS
from simulator.signing import WebhookSigner

log = logging.getLogger("benchmarks.webhook_burst")
MODEL = "fal-ai/flux-pro/kontext/text-to-image"
RESULT = {"images": [{"url": "https://v3.fal.media/files/burst.png"}], "seed": 1}


def _serve_jwks(signer: WebhookSigner) -> tuple[ThreadingHTTPServer, str]:
    document = json.dumps(signer.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *_: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"


def _jobs(sessions: Any, tenant_id: uuid.UUID, count: int) -> list[str]:
    """``count`` generations upstream (``running``), inserted directly: their request ids."""
    now = datetime.now(UTC)
    request_ids = [str(uuid.uuid4()) for _ in range(count)]
    rows = [
        {
            "id": uuid.uuid4(),
            "tenant_id": tenant_id,
            "model": MODEL,
            "input": {"prompt": "burst"},
            "status": "running",
            "created_at": now,
            "updated_at": now,
            "deadline_at": now + timedelta(hours=1),
            "submitted_at": now,
            "upstream_request_id": request_id,
            "expects_webhook": True,
            "next_poll_at": now + timedelta(hours=1),
            "estimated_cost": 0.04,
        }
        for request_id in request_ids
    ]
    with sessions.begin() as session:
        session.execute(insert(GENERATIONS), rows)
    return request_ids


async def _burst(
    port: int, signed: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> dict[str, float]:
    sent: dict[str, float] = {}
    todo = iter(signed)

    async def client() -> None:
        conn = Connection("127.0.0.1", port)
        try:
            for body, headers in todo:
                sent[headers["X-Fal-Webhook-Request-Id"]] = time.time()
                answer = await conn.request("POST", "/webhooks/fal", body, headers=headers)
                if answer.status != 200:
                    raise RuntimeError(f"webhook answered {answer.status}: {answer.body[:200]!r}")
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return sent


def _round(
    api: Proc, port: int, sessions: Any, tenant_id: uuid.UUID, args: argparse.Namespace
) -> dict[str, float]:
    request_ids = _jobs(sessions, tenant_id, args.webhooks)
    signed = []
    for request_id in request_ids:
        body = json.dumps(
            {"request_id": request_id, "gateway_request_id": request_id, "status": "OK"}
            | {"payload": RESULT}
        ).encode()
        headers = SIGNER.headers(request_id, body, timestamp=int(time.time()))
        signed.append((body, {**headers, "Content-Type": "application/json"}))
    with TreeSampler([api.pid], memory=False) as sampler:
        began = time.monotonic()
        sent = asyncio.run(_burst(port, signed, args.concurrency))
        seconds = time.monotonic() - began
    query = select(GENERATIONS.c.upstream_request_id, GENERATIONS.c.completed_at).where(
        GENERATIONS.c.upstream_request_id.in_(request_ids)
    )
    with sessions() as session:
        ended = {r: at for r, at in session.execute(query).all() if at is not None}
    if len(ended) != len(request_ids):
        raise RuntimeError(f"{len(request_ids) - len(ended)} jobs not completed")
    lags = [ended[r].timestamp() - sent[r] for r in request_ids]
    return {
        "webhooks": len(lags),
        "per_second": len(lags) / seconds,
        "lag_p50_s": percentile(lags, 50),
        "lag_p99_s": percentile(lags, 99),
        "lag_max_s": max(lags),
        "api_cpu_ms_per_webhook": 1000.0 * sampler.usage.cpu_seconds / len(lags),
    }


SIGNER = WebhookSigner()


def run_burst(
    database_url: str,
    *,
    webhooks: int,
    concurrency: int,
    rounds: int,
    api_workers: int,
    log_dir: Path,
) -> list[dict[str, float]]:
    """Start the API on the migrated ``database_url`` and time ``rounds`` bursts."""
    jwks, jwks_url = _serve_jwks(SIGNER)
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
        "GENQUEUE_DATA_DIR": str(log_dir / "data"),
        "GENQUEUE_DATABASE_URL": database_url,
        "GENQUEUE_BROKER_URL": "redis://127.0.0.1:1/0",  # never used: nothing is published
        "GENQUEUE_FAL_JWKS_URL": jwks_url,
    }
    api = Proc(
        "api",
        [
            *(sys.executable, "-m", "genqueue", "api", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", str(api_workers)),
        ],
        env,
        log_dir,
    ).start()
    engine = make_engine(database_url)
    try:
        wait_until(lambda: _healthy(port), 60, what="the API")
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            key, _ = create_key(session, name="burst")
            tenant_id = key.tenant_id
        shape = argparse.Namespace(webhooks=webhooks, concurrency=concurrency)
        return [_round(api, port, sessions, tenant_id, shape) for _ in range(rounds)]
    finally:
        stop_all([api], grace=5)
        engine.dispose()
        jwks.shutdown()
        jwks.server_close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.webhook_burst", description=__doc__)
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--api-workers", type=int, default=2)
    args = parser.parse_args(argv)
    log_dir = Path(__file__).resolve().parent / "out" / f"burst-{int(time.time())}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with private_database() as database_url:
        results = run_burst(
            database_url,
            webhooks=args.webhooks,
            concurrency=args.concurrency,
            rounds=args.rounds,
            api_workers=args.api_workers,
            log_dir=log_dir,
        )
    for n, r in enumerate(results, 1):
        sys.stdout.write(
            f"round {n}: {r['webhooks']:.0f} webhooks at {r['per_second']:.0f}/s, lag p50 "
            f"{r['lag_p50_s']:.3f} s p99 {r['lag_p99_s']:.3f} s max {r['lag_max_s']:.3f} s, "
            f"API CPU {r['api_cpu_ms_per_webhook']:.2f} ms per webhook\n"
        )
    return 0


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
