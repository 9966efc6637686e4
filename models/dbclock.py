"""The database's clock, read through the local one.

Leases, ``next_poll_at`` and the submit grace are times written by one host and compared by
another. Each host's own wall clock would let a host whose clock runs ahead see fresh rows as
overdue or take another host's lease early (two hosts submitting or polling one job). The
database is genqueue's timer: every host reads the time as ``local now + offset``, the offset
being the database's ``clock_timestamp()`` minus the local time at the midpoint of the query's
round trip, measured again at most every ``refresh_seconds``."""

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from models.types import utcnow

log = logging.getLogger(__name__)

REFRESH_SECONDS = 60.0


class DatabaseClock:
    """A ``Callable[[], datetime]`` giving the database's time (UTC, aware).

    The offset is measured lazily on use, by one caller at a time; the others meanwhile use
    the last offset. A failed measurement keeps the last offset (0 before the first success),
    is logged once per failing streak and is tried again after ``refresh_seconds``: a clock
    read never raises because the database is away. SQLite runs on this host: offset 0."""

    def __init__(
        self,
        engine: Engine | Callable[[], Engine],
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        local: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self.refresh_seconds = refresh_seconds
        self._local = local
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._next_refresh: float | None = None
        self._failing = False

    @property
    def offset(self) -> timedelta:
        """Database time minus local time, as last measured."""
        return self._offset

    def __call__(self) -> datetime:
        due = self._next_refresh is None or self._monotonic() >= self._next_refresh
        if due and self._lock.acquire(blocking=False):
            try:
                if self._next_refresh is None or self._monotonic() >= self._next_refresh:
                    self._refresh()
            finally:
                self._lock.release()
        return self._local() + self._offset

    def _refresh(self) -> None:
        self._next_refresh = self._monotonic() + self.refresh_seconds
        try:
            self._offset = self._measure()
        except Exception:  # keep the last offset: the clock must answer with the DB away
            if not self._failing:
                log.warning("database clock: offset not refreshed, keeping %s", self._offset)
            self._failing = True
            return
        self._failing = False

    def _measure(self) -> timedelta:
        engine = self._engine if isinstance(self._engine, Engine) else self._engine()
        if engine.dialect.name != "postgresql":
            return timedelta(0)
        with engine.connect() as conn:
            before = self._local()
            database: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
            after = self._local()
        return database.astimezone(UTC) - (before + (after - before) / 2)
