"""The worker's metrics: hooks record series; backlog gauges are read from the database."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from migrations.runner import upgrade
from models.db import make_engine, make_session_factory, session_scope
from models.dbclock import DatabaseClock
from models.keys import create_key
from models.tables import Generation, MediaFile
from models.types import utcnow
from tests.support.generations import create_generation
from worker import metrics


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_hooks_record_labelled_series() -> None:
    before = sample(REGISTRY, "genqueue_upstream_requests_total", endpoint="status", code="429")
    metrics.record_upstream_call("status", 429, 0.2)
    metrics.record_upstream_call("submit", None, 5.0)
    metrics.record_retry("poll")
    metrics.record_submit_outcome("ambiguous")
    metrics.record_terminal("completed", 12.5)
    after = sample(REGISTRY, "genqueue_upstream_requests_total", endpoint="status", code="429")
    assert after == (before or 0) + 1
    assert sample(REGISTRY, "genqueue_upstream_requests_total", endpoint="submit", code="error")
    assert sample(REGISTRY, "genqueue_retries_total", operation="poll")
    assert sample(REGISTRY, "genqueue_submit_outcomes_total", outcome="ambiguous")
    assert sample(REGISTRY, "genqueue_time_to_terminal_seconds_count", status="completed")


def test_backlog_gauges_come_from_the_database(sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    with session_scope(sessions) as session:
        key, _ = create_key(session, name="metrics")
        ids = []
        for _ in range(3):
            gen = create_generation(
                session,
                tenant_id=key.tenant_id,
                model="m",
                input={},
                now=now,
                deadline_seconds=600,
                submit_grace_seconds=10,
            )
            ids.append(gen.id)
        due = {
            ids[0]: ("queued", now - timedelta(seconds=30)),
            ids[1]: ("running", now - timedelta(seconds=5)),
            ids[2]: ("pending", now + timedelta(seconds=60)),
        }
        for gen_id, (status, at) in due.items():
            session.execute(
                update(Generation)
                .where(Generation.id == gen_id)
                .values(status=status, next_poll_at=at)
            )
    registry = CollectorRegistry()
    registry.register(metrics.BacklogCollector(sessions))
    lag = sample(registry, "genqueue_poll_lag_seconds")
    assert lag is not None
    assert 29 <= lag < 60
    assert sample(registry, "genqueue_due_generations", kind="poll") == 2
    assert sample(registry, "genqueue_due_generations", kind="submit") == 0
    assert sample(registry, "genqueue_submit_lag_seconds") == 0
    assert sample(registry, "genqueue_worker_database_up") == 1
    assert sample(registry, "genqueue_media_lag_seconds") == 0  # no file waits
    assert sample(registry, "genqueue_due_media_files") == 0


def test_the_media_backlog_counts_files_waiting_for_a_copy_that_no_copy_holds(
    sessions: sessionmaker[Session],
) -> None:
    """Copies take the CPU the polls leave (worker/cpu_priority.py): the gauges say how far
    behind they are. A leased file is in a copy's hands; a stored or failed one is done."""
    now = utcnow()
    with session_scope(sessions) as session:
        key, _ = create_key(session, name="media-metrics")
        gen = create_generation(
            session, tenant_id=key.tenant_id, model="m", input={}, now=now,
            deadline_seconds=600, submit_grace_seconds=10,
        )  # fmt: skip
        files = [
            ("pending", now - timedelta(seconds=40), None),  # the oldest that waits
            ("pending", now - timedelta(seconds=5), now - timedelta(seconds=1)),  # lease over
            ("pending", now - timedelta(seconds=90), now + timedelta(seconds=60)),  # in a copy
            ("pending", now + timedelta(seconds=30), None),  # a retry, not yet due
            ("stored", now - timedelta(seconds=300), None),
            ("failed", now - timedelta(seconds=300), None),
        ]
        for position, (status, next_at, lease_until) in enumerate(files):
            session.add(
                MediaFile(
                    generation_id=gen.id, position=position, pointer=f"/images/{position}",
                    upstream_url=f"https://cdn.example/{position}.png", status=status,
                    next_at=next_at, lease_until=lease_until,
                )
            )  # fmt: skip
    registry = CollectorRegistry()
    registry.register(metrics.BacklogCollector(sessions))
    lag = sample(registry, "genqueue_media_lag_seconds")
    assert lag is not None
    assert 39 <= lag < 60
    assert sample(registry, "genqueue_due_media_files") == 2
    assert sample(registry, "genqueue_poll_lag_seconds") == 0  # the generation is pending


def test_the_poll_lag_reads_the_database_clock(
    private_sessions: sessionmaker[Session],
) -> None:
    """On a host whose clock runs a minute ahead, the worker's gauge (``install`` gives it a
    ``DatabaseClock``) reads how late a row is by the database's time, as the leases do: a row
    due 20 s ago reads 20 s, not 80 s."""
    engine = private_sessions.kw["bind"]
    assert isinstance(engine, Engine)
    with session_scope(private_sessions) as session:
        key, _ = create_key(session, name="metrics-dbclock")
        gen = create_generation(
            session,
            tenant_id=key.tenant_id,
            model="m",
            input={},
            now=utcnow(),
            deadline_seconds=600,
            submit_grace_seconds=10,
        )
        db_now = session.scalar(select(func.clock_timestamp()))
        assert db_now is not None
        session.execute(
            update(Generation)
            .where(Generation.id == gen.id)
            .values(status="running", next_poll_at=db_now - timedelta(seconds=20))
        )

    def ahead() -> datetime:
        return utcnow() + timedelta(seconds=60)

    readings = {}
    for name, clock in (("database", DatabaseClock(engine, local=ahead)), ("local", ahead)):
        registry = CollectorRegistry()
        registry.register(metrics.BacklogCollector(private_sessions, clock))
        readings[name] = sample(registry, "genqueue_poll_lag_seconds")
    assert readings["database"] is not None
    assert 20 <= readings["database"] < 40, readings
    assert readings["local"] is not None
    assert readings["local"] >= 80, readings  # what the host's own clock would have read


def test_a_broken_database_does_not_break_the_scrape(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables
    registry = CollectorRegistry()
    registry.register(metrics.BacklogCollector(make_session_factory(engine)))
    text = generate_latest(registry).decode()
    assert "genqueue_worker_database_up 0.0" in text
    engine.dispose()
