"""M1: media copy throughput.
``python -m benchmarks.m1_media [--results 1000] [--rounds 2] [--store local|s3] [--md PATH]``

``results`` completed generations of 4 images each (256 KiB files from a stand-in CDN,
benchmarks/media_cdn.py, in a process of its own) are copied into the store by genqueue's media
tick body (worker/lifecycle/media.py: expand, lease, stream with the size limit, SHA-256,
sniff, record each outcome and event in PostgreSQL), tick after tick until none is pending; the
baseline copies the same URLs with a bare loop of the same concurrency (httpx stream →
an obstore writer, ``obstore.open_writer``, the write genqueue's store makes; SHA-256 on the
way, no database). Both for the local store and for an
S3-compatible server (moto's ``moto_server``, a process of its own), in ``rounds`` rounds of
both loops in turn, the order alternating (on a shared machine one loop's figure moves by 2×
from run to run; whichever ran second would otherwise meet other load). genqueue runs its copy
threads at the bare loop's CPU priority (``media_nice=0``). The table is printed and, with
``--md``, written between the media markers of that file.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import obstore
from sqlalchemy import func, insert, select

from benchmarks.media_cdn import SIZE
from benchmarks.services import private_database
from genqueue.net import free_port, wait_until
from models.db import make_engine, make_session_factory
from models.destinations import AddressPolicy
from models.keys import create_key
from models.media_store import WRITE_BUFFER, MediaStore, open_store
from models.tables import GENERATIONS, MEDIA_FILES
from worker.context import Limits, WorkerContext
from worker.lifecycle.media import copy_due_media, media_http
from worker.upstream import UpstreamClient

IMAGES = 4
CONCURRENCY = 16
BEGIN, END = "<!-- media benchmark: begin -->", "<!-- media benchmark: end -->"


@contextmanager
def process(argv: list[str], ready: str, *, session_nice: int = 0) -> Iterator[int]:
    """Run ``argv`` until the block ends, once ``ready`` answers; its pid. With
    ``session_nice``, in a session of its own at that nice (``worker/cpu_priority.py``: on Linux
    the CPU is shared between sessions before a process's own nice counts)."""
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=bool(session_nice),
    )
    if session_nice:
        Path(f"/proc/{proc.pid}/autogroup").write_text(str(session_nice))
    try:
        wait_until(lambda: _answers(ready), 30, what=argv[0])
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(20)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def result_row(tenant_id: uuid.UUID, cdn: str, now: datetime, **values: Any) -> dict[str, Any]:
    """A generation completed at ``now`` with ``IMAGES`` files on ``cdn``, its copy pending
    (and ``values`` set on its row), as a row to insert."""
    gen_id = uuid.uuid4()
    return {
        "id": gen_id,
        "tenant_id": tenant_id,
        "model": "fal-ai/flux-pro/kontext/text-to-image",
        "input": {"prompt": "bench"},
        "status": "completed",
        "result": {"images": [{"url": f"{cdn}/files/{gen_id}/{i}.jpg"} for i in range(IMAGES)]},
        "media_status": "pending",
        "created_at": now,
        "updated_at": now,
        "completed_at": now,
        "deadline_at": now,
        "submit_attempts": 1,
        "poll_count": 1,
        "error_count": 0,
        "webhook_attempts": 0,
        **values,
    }


def seed(database_url: str, cdn: str, results: int) -> None:
    engine = make_engine(database_url)
    now = datetime.now(UTC)
    with make_session_factory(engine).begin() as session:
        key, _ = create_key(session, name=f"bench-{uuid.uuid4().hex[:6]}")
        rows = [result_row(key.tenant_id, cdn, now) for _ in range(results)]
        session.execute(insert(GENERATIONS), rows)
    engine.dispose()


def urls_of(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        urls = [
            image["url"]
            for (result,) in session.execute(select(GENERATIONS.c.result))
            for image in result["images"]
        ]
    engine.dispose()
    return urls


def genqueue_copy(database_url: str, store: MediaStore) -> tuple[float, int]:
    engine = make_engine(database_url)
    ctx = WorkerContext(
        sessions=make_session_factory(engine),
        client=UpstreamClient(base_url="http://127.0.0.1:9", key=None),
        publish=lambda name, args: None,
        limits=Limits(media_concurrency=CONCURRENCY, media_nice=0),  # as the bare loop's
    )
    http = media_http(30.0, CONCURRENCY, AddressPolicy(allow_private=True))  # the CDN: loopback
    start = time.perf_counter()
    while True:
        copy_due_media(ctx, store, http)
        with ctx.sessions() as session:
            left = session.scalar(
                select(func.count()).where(GENERATIONS.c.media_status == "pending")
            )
        if not left:
            break
    elapsed = time.perf_counter() - start
    with ctx.sessions() as session:
        stored = session.scalar(select(func.count()).where(MEDIA_FILES.c.status == "stored"))
    http.close()
    engine.dispose()
    return elapsed, int(stored or 0)


def bare_copy(urls: list[str], store: Any, prefix: str = "bare") -> tuple[float, int]:
    http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=CONCURRENCY))

    def one(pair: tuple[int, str]) -> None:
        index, url = pair
        digest = hashlib.sha256()
        with (
            http.stream("GET", url) as response,
            obstore.open_writer(store, f"{prefix}/{index}", buffer_size=WRITE_BUFFER) as out,
        ):
            for chunk in response.iter_raw(256 * 1024):
                digest.update(chunk)
                out.write(chunk)

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(one, enumerate(urls)))
    elapsed = time.perf_counter() - start
    http.close()
    return elapsed, len(urls)


def run(results: int, only: str | None = None, rounds: int = 2) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cdn_port, s3_port = free_port(), free_port()
    cdn = f"http://127.0.0.1:{cdn_port}"
    s3 = f"http://127.0.0.1:{s3_port}"
    py = sys.executable
    moto = str(Path(py).parent / "moto_server")
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",  # moto takes any; not a secret
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3,
        "AWS_ALLOW_HTTP": "true",
    }
    os.environ.update(env)
    tmp = Path(tempfile.mkdtemp(prefix="gq-media-bench-"))
    uvicorn = [py, "-m", "uvicorn", "benchmarks.media_cdn:app", "--port", str(cdn_port)]
    try:
        with (
            process([*uvicorn, "--log-level", "warning"], f"{cdn}/files/x/0.jpg"),
            process([moto, "-p", str(s3_port)], f"{s3}/"),
        ):
            boto3.client("s3", endpoint_url=s3).create_bucket(Bucket="bench")
            stores: dict[str, Callable[[], MediaStore]] = {
                "local": lambda: open_store(f"file://{tmp}/local"),
                "s3 (moto)": lambda: open_store("s3://bench/media", endpoint=s3),
            }
            for label, make in stores.items():
                if only and not label.startswith(only):
                    continue
                runs = [_round(cdn, results, make, n) for n in range(rounds)]
                rows.append(_row(label, *(sum(figures) for figures in zip(*runs, strict=True))))
                rows[-1]["round_ratios"] = [_row(label, *r)["ratio"] for r in runs]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _round(
    cdn: str, results: int, make: Callable[[], MediaStore], n: int
) -> tuple[float, int, float, int]:
    """One round: genqueue's copy and the bare loop's of the same files, in turn (the bare
    loop first in even rounds, second in odd ones: a machine whose load moves favours
    neither); (genqueue seconds, files, bare seconds, files)."""
    with private_database() as database_url:
        seed(database_url, cdn, results)
        urls = urls_of(database_url)
        if n % 2 == 0:
            base_s, base_n = bare_copy(urls, make()._store, f"bare/{n}")
            gq_s, gq_n = genqueue_copy(database_url, make())
        else:
            gq_s, gq_n = genqueue_copy(database_url, make())
            base_s, base_n = bare_copy(urls, make()._store, f"bare/{n}")
    return gq_s, gq_n, base_s, base_n


def _row(label: str, gq_s: float, gq_n: float, base_s: float, base_n: float) -> dict[str, Any]:
    mb = SIZE / 1e6
    return {
        "store": label,
        "files": int(gq_n),
        "genqueue_mb_s": gq_n * mb / gq_s,
        "genqueue_files_s": gq_n / gq_s,
        "bare_mb_s": base_n * mb / base_s,
        "bare_files_s": base_n / base_s,
        "ratio": (gq_n / gq_s) / (base_n / base_s),
    }


def markdown(rows: list[dict[str, Any]], results: int, rounds: int = 2) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    command = f"python -m benchmarks.m1_media --results {results} --rounds {rounds}"
    lines = [
        BEGIN,
        f"## M1 media copy ({when} UTC, `{command}`)",
        "",
        f"{results} completed results × {IMAGES} files of {SIZE // 1024} KiB from a stand-in CDN "
        f"process; {CONCURRENCY} copies at once in both. genqueue: the media tick's body in one "
        "process, tick after tick (lease, stream, SHA-256, sniff, outcome and event in "
        "PostgreSQL). Baseline, same run: a bare thread-pool loop, httpx stream → obstore writer "
        "with SHA-256, no database. Target ≥ 0.8× the baseline. Each store: "
        f"{rounds} rounds, each of both loops in turn (the bare one first in the first round, "
        "second in the next); the figures are the rounds' totals, the ratio per round beside.",
        "",
        "| store | files | genqueue MB/s | genqueue files/s | bare MB/s | bare files/s | ratio "
        "| per round |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['files']} | {r['genqueue_mb_s']:.1f} | "
            f"{r['genqueue_files_s']:.0f} | {r['bare_mb_s']:.1f} | {r['bare_files_s']:.0f} | "
            f"{r['ratio']:.2f}× | "
            + ", ".join(f"{x:.2f}×" for x in r.get("round_ratios", []))
            + " |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_section(path: Path, section: str, *, begin: str = BEGIN, end: str = END) -> None:
    """Put ``section`` between its markers in ``path`` (or at its end)."""
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1000)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--store", choices=["local", "s3"], default=None, help="only this one")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per store (order alternates)")
    args = parser.parse_args()
    rows = run(args.results, args.store, args.rounds)
    section = markdown(rows, args.results, args.rounds)
    sys.stdout.write(section + "\n")
    if args.md:
        write_section(args.md, section)


if __name__ == "__main__":
    main()
