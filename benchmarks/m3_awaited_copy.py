"""M3: a copy somebody waits for, behind a backlog of copies.
``python -m benchmarks.m3_awaited_copy [--backlog 1000] [--md PATH]``

A sync ``/run`` answer and a client webhook wait up to ``GENQUEUE_MEDIA_WAIT`` (30 s) after
completion for the copy of their files, so they carry genqueue's URLs. Here genqueue's media
tick body (as M1 runs it: one process, tick after tick, 16 copies at once, local store) copies
a backlog of ``backlog`` completed results × 4 files of 256 KiB from M1's stand-in CDN. Once it
is under way, two results of 4 files complete at the same moment: one a sync ``/run`` waits for
(``copy_awaited``), and, as the baseline in the same run, one nobody waits for. Measured, for
each: seconds from its completion to its last file stored, and how many files were still
waiting then. The target: the awaited one stored well within ``GENQUEUE_MEDIA_WAIT``, whatever
the backlog; the other takes its turn behind it.
"""

import argparse
import shutil
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.m1_media import (
    CONCURRENCY,
    IMAGES,
    process,
    result_row,
    seed,
    write_section,
)
from benchmarks.media_cdn import SIZE
from benchmarks.report import OUT_DIR
from benchmarks.services import private_database
from genqueue.net import free_port
from models.db import make_engine, make_session_factory
from models.destinations import AddressPolicy
from models.media_store import open_store
from models.tables import GENERATIONS, MEDIA_FILES
from worker.context import Limits, WorkerContext
from worker.lifecycle.media import copy_due_media, media_http
from worker.upstream import UpstreamClient

BEGIN, END = "<!-- awaited copy benchmark: begin -->", "<!-- awaited copy benchmark: end -->"
STARTED = 200
"""Backlog files stored before the two results complete: the copies are under way."""


def _complete(sessions: sessionmaker[Session], cdn: str, *, awaited: bool) -> uuid.UUID:
    """A result of ``IMAGES`` files completed now, like the backlog's, pending its copy."""
    with sessions.begin() as session:
        tenant_id = session.scalar(select(GENERATIONS.c.tenant_id).limit(1))
        assert tenant_id is not None  # the backlog's
        row = result_row(tenant_id, cdn, datetime.now(UTC), copy_awaited=awaited)
        session.execute(insert(GENERATIONS).values(row))
    gen_id: uuid.UUID = row["id"]
    return gen_id


def _stored(sessions: sessionmaker[Session], gen_id: uuid.UUID | None = None) -> int:
    f = MEDIA_FILES.c
    query = select(func.count()).where(f.status == "stored")
    if gen_id is not None:
        query = query.where(f.generation_id == gen_id)
    with sessions() as session:
        return int(session.scalar(query) or 0)


def _copying(ctx: WorkerContext, store_url: str, stop: threading.Event) -> None:
    """Media ticks, one after the other, until ``stop``."""
    store = open_store(store_url)
    http = media_http(30.0, CONCURRENCY, AddressPolicy(allow_private=True))  # the CDN: loopback
    try:
        while not stop.is_set():
            if not copy_due_media(ctx, store, http):
                time.sleep(0.05)
    finally:
        http.close()


def run(backlog: int, store_dir: Path) -> dict[str, Any]:
    cdn_port = free_port()
    cdn = f"http://127.0.0.1:{cdn_port}"
    uvicorn = [sys.executable, "-m", "uvicorn", "benchmarks.media_cdn:app", "--port"]
    with (
        process([*uvicorn, str(cdn_port), "--log-level", "warning"], f"{cdn}/files/x/0.jpg"),
        private_database() as database_url,
    ):
        seed(database_url, cdn, backlog)
        engine = make_engine(database_url)
        sessions = make_session_factory(engine)
        ctx = WorkerContext(
            sessions=sessions,
            client=UpstreamClient(base_url="http://127.0.0.1:9", key=None),
            publish=lambda name, args: None,
            limits=Limits(media_concurrency=CONCURRENCY, media_nice=0),
        )
        stop = threading.Event()
        copier = threading.Thread(
            target=_copying, args=(ctx, f"file://{store_dir}", stop), daemon=True
        )
        copier.start()
        try:
            while _stored(sessions) < STARTED:
                time.sleep(0.05)
            ids = {
                "awaited (a sync /run)": _complete(sessions, cdn, awaited=True),
                "not awaited (baseline)": _complete(sessions, cdn, awaited=False),
            }
            start = time.perf_counter()
            figures: dict[str, dict[str, float]] = {}
            while len(figures) < len(ids):
                for label, gen_id in ids.items():
                    if label not in figures and _stored(sessions, gen_id) == IMAGES:
                        left = backlog * IMAGES + IMAGES * len(ids) - _stored(sessions)
                        figures[label] = {"seconds": time.perf_counter() - start, "left": left}
                time.sleep(0.02)
        finally:
            stop.set()
            copier.join(60)
            engine.dispose()
    return {"backlog_files": backlog * IMAGES, "figures": figures}


def markdown(result: dict[str, Any], backlog: int) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    command = f"python -m benchmarks.m3_awaited_copy --backlog {backlog}"
    lines = [
        BEGIN,
        f"## M3 a copy somebody waits for, behind a backlog ({when} UTC, `{command}`)",
        "",
        f"{result['backlog_files']} backlog files ({backlog} results × {IMAGES} of "
        f"{SIZE // 1024} KiB) copied by the media tick body, {CONCURRENCY} at once; after "
        f"{STARTED} are stored, two results of {IMAGES} files complete at once, one awaited by a "
        "sync /run, one not (the baseline, same run). Target: the awaited one stored well "
        "within GENQUEUE_MEDIA_WAIT (30 s).",
        "",
        "| result | stored after | files still waiting then |",
        "|---|---:|---:|",
    ]
    for label, figure in result["figures"].items():
        lines.append(f"| {label} | {figure['seconds']:.2f} s | {int(figure['left'])} |")
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=1000, help="results of 4 files")
    parser.add_argument("--md", type=Path, default=None)
    args = parser.parse_args()
    store_dir = OUT_DIR / f"m3-media-{uuid.uuid4().hex[:8]}"
    try:
        result = run(args.backlog, store_dir)
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)
    section = markdown(result, args.backlog)
    sys.stdout.write(section + "\n")
    if args.md:
        write_section(args.md, section, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
