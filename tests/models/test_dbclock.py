"""The database clock against a real PostgreSQL: a skewed local clock is corrected."""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from models.db import make_engine
from models.dbclock import DatabaseClock
from models.types import utcnow

TOLERANCE = timedelta(milliseconds=500)
"""Far below the skews (5 s), above a local round trip."""


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def database_now(engine: Engine) -> datetime:
    with engine.connect() as conn:
        now: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    return now.astimezone(UTC)


class Skewed:
    """A local clock ``skew`` away from the real one, and a monotonic clock moved by hand."""

    def __init__(self, seconds: float) -> None:
        self.skew = timedelta(seconds=seconds)
        self.elapsed = 0.0

    def local(self) -> datetime:
        return utcnow() + self.skew

    def monotonic(self) -> float:
        return self.elapsed


def clock_for(engine: Engine, host: Skewed) -> DatabaseClock:
    return DatabaseClock(engine, local=host.local, monotonic=host.monotonic)


@pytest.mark.parametrize("skew", [5.0, -5.0])
def test_a_skewed_host_reads_the_database_time(engine: Engine, skew: float) -> None:
    clock = clock_for(engine, Skewed(skew))
    before = database_now(engine)
    read = clock()
    after = database_now(engine)
    assert before - TOLERANCE <= read <= after + TOLERANCE
    assert abs(clock.offset + timedelta(seconds=skew)) < TOLERANCE
    assert read.tzinfo is not None


def test_the_offset_is_measured_again_only_after_the_refresh_interval(engine: Engine) -> None:
    host = Skewed(5.0)
    clock = clock_for(engine, host)
    clock()
    host.skew = timedelta(seconds=-5)  # the host's clock jumps; the offset is not measured yet
    host.elapsed = clock.refresh_seconds - 1
    stale = clock() - database_now(engine)
    assert abs(stale + timedelta(seconds=10)) < TOLERANCE
    host.elapsed = clock.refresh_seconds
    assert abs(clock() - database_now(engine)) < TOLERANCE


def test_a_failed_refresh_keeps_the_last_offset(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    host = Skewed(5.0)
    current = [engine]
    clock = DatabaseClock(lambda: current[0], local=host.local, monotonic=host.monotonic)
    clock()
    measured = clock.offset
    dead = make_engine(
        "postgresql://genqueue@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    current[0] = dead
    try:
        with caplog.at_level(logging.WARNING, logger="models.dbclock"):
            for attempt in (1, 2):
                host.elapsed = attempt * clock.refresh_seconds
                read = clock()
                assert clock.offset == measured
                assert abs(read - database_now(engine)) < TOLERANCE
    finally:
        dead.dispose()
    assert len([r for r in caplog.records if r.name == "models.dbclock"]) == 1
    current[0] = engine
    host.skew = timedelta(seconds=-5)
    host.elapsed = 3 * clock.refresh_seconds
    assert abs(clock() - database_now(engine)) < TOLERANCE  # recovered: measured again


def test_sqlite_is_this_host_clock(tmp_path: Path) -> None:
    sqlite = make_engine(f"sqlite:///{tmp_path}/clock.db")
    try:
        host = Skewed(5.0)
        clock = clock_for(sqlite, host)
        assert clock.offset == timedelta(0)
        assert abs(clock() - host.local()) < TOLERANCE
    finally:
        sqlite.dispose()
