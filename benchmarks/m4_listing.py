"""M4: the media tick's listing, behind a backlog of results being copied.
``python -m benchmarks.m4_listing [--backlogs 5000,20000] [--rounds 30] [--md PATH]``

Every tick, and every ``LIST_INTERVAL`` within one, the media tick lists the files of newly
completed results (``models/media.py``: ``expand_pending``). Here, on PostgreSQL, a backlog of
``backlog`` completed results × 4 files is listed first (their copies pending: the files wait,
as behind slow copies); then, ``rounds`` times, 10 results complete and one listing, timed,
lists them. The baseline, same run: the same with no backlog. Target: the listing takes as long
whatever the backlog.
"""

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.m1_media import IMAGES, result_row, seed, write_section
from benchmarks.services import private_database
from models.db import make_engine, make_session_factory
from models.media import expand_pending
from models.tables import GENERATIONS

BEGIN, END = "<!-- listing benchmark: begin -->", "<!-- listing benchmark: end -->"
NEW = 10
"""Results completed before each timed listing."""
BATCH = 200
"""Results one listing takes at most (the media tick's ``EXPAND_BATCH``)."""
CDN = "http://cdn.invalid"
"""Nothing is fetched: only the listing runs."""


def _list_all(sessions: sessionmaker[Session]) -> None:
    while True:
        with sessions.begin() as session:
            if not expand_pending(session, datetime.now(UTC), limit=BATCH, wait=30.0):
                return


def _timed(sessions: sessionmaker[Session], rounds: int) -> list[float]:
    """Milliseconds of each listing of ``NEW`` results just completed."""
    with sessions() as session:
        tenant_id = session.scalar(select(GENERATIONS.c.tenant_id).limit(1))
    assert tenant_id is not None  # the seed's
    figures = []
    for _ in range(rounds):
        now = datetime.now(UTC)
        with sessions.begin() as session:
            session.execute(
                insert(GENERATIONS), [result_row(tenant_id, CDN, now) for _ in range(NEW)]
            )
        start = time.perf_counter()
        with sessions.begin() as session:
            listed = expand_pending(session, datetime.now(UTC), limit=BATCH, wait=30.0)
        figures.append((time.perf_counter() - start) * 1000)
        assert listed == NEW, listed
    return figures


def measure(backlog: int, rounds: int) -> dict[str, float]:
    with private_database() as database_url:
        seed(database_url, CDN, max(backlog, 1))
        engine = make_engine(database_url)
        try:
            sessions = make_session_factory(engine)
            _list_all(sessions)
            figures = _timed(sessions, rounds)
        finally:
            engine.dispose()
    return {
        "backlog": backlog,
        "median_ms": statistics.median(figures),
        "p90_ms": statistics.quantiles(figures, n=10, method="inclusive")[-1],
    }


def run(backlogs: list[int], rounds: int) -> list[dict[str, float]]:
    return [measure(backlog, rounds) for backlog in [0, *backlogs]]


def markdown(rows: list[dict[str, float]], backlogs: list[int], rounds: int) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    spec = ",".join(str(b) for b in backlogs)
    command = f"python -m benchmarks.m4_listing --backlogs {spec} --rounds {rounds}"
    base = rows[0]["median_ms"]
    lines = [
        BEGIN,
        f"## M4 the media listing behind a backlog ({when} UTC, `{command}`)",
        "",
        f"PostgreSQL. A backlog of completed results × {IMAGES} files, listed, their copies "
        f"pending; then {rounds} times {NEW} results complete and one listing (`expand_pending`, "
        f"up to {BATCH}) lists them, timed. Baseline, same run: no backlog (one result listed "
        "before). Target: as fast whatever the backlog.",
        "",
        "| backlog (results) | files waiting | listing median | p90 | against no backlog |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        backlog = int(row["backlog"])
        lines.append(
            f"| {backlog} | {backlog * IMAGES} | {row['median_ms']:.2f} ms | "
            f"{row['p90_ms']:.2f} ms | {row['median_ms'] / base:.2f}× |"
        )
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlogs", default="5000,20000", help="results, comma-separated")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--md", type=Path, default=None)
    args = parser.parse_args()
    if args.rounds < 2:
        parser.error("--rounds: at least 2 (a median and a p90)")
    backlogs = [int(b) for b in args.backlogs.split(",") if b]
    rows = run(backlogs, args.rounds)
    section = markdown(rows, backlogs, args.rounds)
    sys.stdout.write(section + "\n")
    if args.md:
        write_section(args.md, section, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
