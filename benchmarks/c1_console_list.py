"""C1: the console's list at 100,000 rows. One tenant with 100,000 generations (and another
with as many, which no query may read), on PostgreSQL; the time of one page (25 rows) of
``api.listing.list_page`` for what the console asks, beside the same run's plain first page
(the list as it was before the console).

    python -m benchmarks.c1_console_list [--rows 100000] [--repeat 15]

Needs PostgreSQL (``GENQUEUE_BENCH_PG``, default the machine's). Prints one line per query:
the median and the slowest of ``--repeat`` runs, in milliseconds.
"""

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from functools import partial

from sqlalchemy import text
from sqlalchemy.orm import Session

from api.listing import Filters, encode_cursor, list_page
from benchmarks.services import private_database
from models.db import make_engine, make_session_factory
from models.keys import create_key
from models.status import GenerationStatus
from models.tables import Generation

RARE = "zanzibar"
"""A word in 10 prompts of the tenant's 100,000."""
FILL = """
INSERT INTO generations (id, tenant_id, model, status, priority, input, submit_attempts,
    poll_count, error_count, expects_webhook, created_at, updated_at, deadline_at,
    webhook_attempts)
SELECT gen_random_uuid(), :tenant, 'fal-ai/flux-pro/kontext/text-to-image',
    CASE WHEN n % 100 = 0 THEN 'failed' WHEN n % 100 = 1 THEN 'cancelled' ELSE 'completed' END,
    1,
    jsonb_build_object('prompt', 'a lighthouse at dusk, number ' || n ||
        CASE WHEN n % (:rows / 10) = 7 THEN ' :rare' ELSE '' END),
    1, 3, 0, false,
    now() - make_interval(secs => :rows - n), now(), now() + interval '1 hour', 0
FROM generate_series(1, :rows) AS n
"""


def _fill(session: Session, tenant: uuid.UUID, rows: int) -> None:
    sql = FILL.replace(":rare", RARE)
    session.execute(text(sql), {"tenant": tenant, "rows": rows})


def _time(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    run()  # warm the cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.c1_console_list")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with private_database() as url:
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            key, _ = create_key(session, name="c1", tenant_name="c1")
            other, _ = create_key(session, name="c1-other", tenant_name="c1-other")
            tenant = key.tenant_id
            _fill(session, tenant, args.rows)
            _fill(session, other.tenant_id, args.rows)
        with engine.connect() as conn:
            conn.execute(text("ANALYZE generations"))
        with sessions() as session:
            deep = session.scalars(
                Generation.__table__.select()
                .with_only_columns(Generation.id)
                .where(Generation.tenant_id == tenant)
                .order_by(Generation.created_at.desc(), Generation.id.desc())
                .offset(args.rows * 9 // 10)
                .limit(1)
            ).one()
            cursor = encode_cursor(session.get_one(Generation, deep))
            queries: dict[str, tuple[Filters, str | None]] = {
                "first page (baseline)": (Filters(), None),
                "page at row 90,000 (cursor)": (Filters(), cursor),
                "status failed (1 %)": (Filters(statuses=[GenerationStatus.FAILED]), None),
                "prompt contains 'number 12' (common)": (Filters(prompt="number 12"), None),
                f"prompt contains '{RARE}' (10 rows)": (Filters(prompt=RARE), None),
                "prompt contains 'no such words'": (Filters(prompt="no such words"), None),
            }
            print(f"C1: one page of 25 of {args.rows:,} rows (another tenant: as many), ms")
            for name, (filters, at) in queries.items():
                page = partial(list_page, session, tenant, filters, limit=25, cursor=at)
                median, worst = _time(page, args.repeat)
                print(f"  {name:<40} median {median:7.1f}   max {worst:7.1f}")
        engine.dispose()


if __name__ == "__main__":
    main()
