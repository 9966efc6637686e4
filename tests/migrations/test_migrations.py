"""Migrations create everything on an empty database, and agree with the models."""

import contextlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import (
    Connection,
    Integer,
    Uuid,
    column,
    create_engine,
    insert,
    inspect,
    select,
    table,
)
from sqlalchemy.orm import Session

from migrations.runner import check, upgrade
from models.db import make_engine, make_session_factory, normalize_url
from models.history import queue_positions
from models.tables import Base, Generation, GenerationEvent
from models.types import JSONType, UTCDateTime
from tests.support.services import postgres_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["postgresql", "sqlite"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of either backend, for a migration's test to upgrade step by step."""
    if request.param == "postgresql":
        with postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'old.db'}"


@contextlib.contextmanager
def _raw(url: str) -> Iterator[Connection]:
    """A transaction on ``url`` with no ORM: the tables as an old revision left them."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


@contextlib.contextmanager
def _session(url: str) -> Iterator[Session]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_check_on_empty_postgres() -> None:
    with postgres_database() as url:
        upgrade(url)
        check(url)  # raises if `alembic check` would find drift
        assert set(Base.metadata.tables) <= _tables(url)


def test_upgrade_and_check_on_empty_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    check(url)
    assert set(Base.metadata.tables) <= _tables(url)


def test_alembic_cli_from_the_repository_root(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"GENQUEUE_DATABASE_URL": url, "PATH": str(Path(sys.executable).parent)}
    for args in (["upgrade", "head"], ["check"]):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    assert "generations" in _tables(url)


def _old_history(url: str) -> uuid.UUID:
    """A generation with events as the worker wrote them before 0003: a row per position."""
    gen_id, tenant_id = uuid.uuid4(), uuid.uuid4()
    when, ints = UTCDateTime(), Integer()
    tenants = table("tenants", column("id", Uuid()), column("name"), column("created_at", when))
    generations = table(
        "generations",
        *[column(n, Uuid()) for n in ("id", "tenant_id")],
        *[column(n) for n in ("model", "status")],
        column("input", JSONType),
        *[column(n, when) for n in ("created_at", "updated_at", "deadline_at")],
        *[column(n, ints) for n in ("submit_attempts", "poll_count", "error_count")],
        column("webhook_attempts", ints),
    )
    events = table(
        "generation_events",
        column("generation_id", Uuid()),
        column("at", when),
        column("kind"),
        column("status"),
        column("queue_position", ints),
        column("detail", JSONType),
    )
    t = [datetime(2026, 11, 27, 12, 0, n, tzinfo=UTC) for n in range(10)]
    kinds = [
        ("created", None), ("submitted", 7), ("queue_position", 6), ("queue_position", 5),
        ("queue_position", 4), ("poll_retry", None), ("queue_position", 2), ("status", None),
        ("queue_position", 1), ("queue_position", 0),
    ]  # fmt: skip
    with _raw(url) as conn:
        conn.execute(insert(tenants).values(id=tenant_id, name=f"m-{gen_id}", created_at=t[0]))
        conn.execute(
            insert(generations).values(
                id=gen_id, tenant_id=tenant_id, model="m", input={}, status="queued",
                created_at=t[0], updated_at=t[0], deadline_at=t[9], submit_attempts=1,
                poll_count=0, error_count=0, webhook_attempts=0,
            )
        )  # fmt: skip
        conn.execute(
            insert(events),
            [
                {"generation_id": gen_id, "at": at, "kind": kind, "status": None,
                 "queue_position": position, "detail": None}
                for at, (kind, position) in zip(t, kinds, strict=True)
            ],
        )  # fmt: skip
    return gen_id


def test_0003_collapses_position_rows_into_runs_and_keeps_every_position(old_url: str) -> None:
    upgrade(old_url, "0002")
    gen_id = _old_history(old_url)
    upgrade(old_url)
    check(old_url)
    with _session(old_url) as session:
        kinds = session.scalars(
            select(GenerationEvent.kind)
            .where(GenerationEvent.generation_id == gen_id)
            .order_by(GenerationEvent.id)
        ).all()
        series = queue_positions(session, gen_id)
    assert kinds == [
        "created", "submitted", "queue_position", "poll_retry", "queue_position", "status",
        "queue_position",
    ]  # fmt: skip
    assert [p for _, p in series] == [7, 6, 5, 4, 2, 1, 0]
    assert [at.second for at, _ in series] == [1, 2, 3, 4, 6, 8, 9]


def test_0006_stops_the_deliveries_abandoned_before_it(old_url: str) -> None:
    upgrade(old_url, "0004")
    abandoned, retrying = _old_history(old_url), _old_history(old_url)
    generations = table(
        "generations",
        column("id", Uuid()),
        column("webhook_url"),
        column("webhook_attempts", Integer()),
    )
    with _raw(old_url) as conn:
        for gen_id, attempts in ((abandoned, 10), (retrying, 3)):
            conn.execute(
                generations.update()
                .where(generations.c.id == gen_id)
                .values(webhook_url="http://hook.example/x", webhook_attempts=attempts)
            )
    upgrade(old_url)
    check(old_url)
    with _session(old_url) as session:
        stopped = {
            gen_id: session.scalar(
                select(Generation.webhook_stopped_at).where(Generation.id == gen_id)
            )
            for gen_id in (abandoned, retrying)
        }
    assert stopped[abandoned] is not None
    assert stopped[retrying] is None


def test_0012_marks_results_listed_before_it(old_url: str) -> None:
    """A pending result whose files were listed before 0012 is marked listed (when its first
    file row was made), so the new listing never lists it again; one not listed yet is not."""
    listed_at = datetime(2026, 11, 27, 13, 0, 0, tzinfo=UTC)
    upgrade(old_url, "0011")
    listed, unlisted = _old_history(old_url), _old_history(old_url)
    generations = table("generations", column("id", Uuid()), column("media_status"))
    files = table(
        "media_files",
        column("generation_id", Uuid()),
        *[column(n, Integer()) for n in ("position", "attempts")],
        *[column(n) for n in ("pointer", "upstream_url", "status")],
        *[column(n, UTCDateTime()) for n in ("next_at", "created_at")],
    )
    with _raw(old_url) as conn:
        conn.execute(generations.update().values(media_status="pending"))
        conn.execute(
            insert(files),
            [
                {"generation_id": listed, "position": n, "attempts": 0,
                 "pointer": f"/images/{n}", "upstream_url": f"https://cdn.example/{n}",
                 "status": "pending", "next_at": listed_at,
                 "created_at": listed_at.replace(second=n)}
                for n in (1, 0)
            ],
        )  # fmt: skip
    upgrade(old_url)
    check(old_url)
    with _session(old_url) as session:
        marks = dict(
            session.execute(
                select(Generation.id, Generation.media_listed_at).where(
                    Generation.id.in_([listed, unlisted])
                )
            ).all()
        )
    assert marks == {listed: listed_at, unlisted: None}
