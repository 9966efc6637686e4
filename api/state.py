"""What one app instance owns (settings, a lazily built engine and its session factories, the
publisher, the intake and the key lookups), and the per-request dependencies that hand it to a
route: ``StateDep``, ``SessionDep`` and ``CallerDep``."""

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from api.auth import Authenticator, Caller
from api.fal.answers import public_base
from api.fal.jwks import JwksCache
from api.fal.settler import WebhookSettler
from api.fal.watcher import StreamWatcher
from api.intake import Intake, IntakeLimits
from api.proxies import TrustedProxies
from api.publisher import Publisher
from api.ratelimit import CreateLimiter
from models.catalogue import load_catalogue
from models.db import make_engine, make_session_factory, normalize_url
from models.dbclock import DatabaseClock
from models.destinations import AddressPolicy
from models.media_store import MediaStore, open_store
from models.media_urls import MediaSigner, MediaUrls, load_signing_key, presigner
from models.secretbox import SecretBox, secret_box
from models.settings import Settings

# Sync routes and dependencies run on anyio's thread pool (40 threads by default). A connection
# pool smaller than that opens and closes "overflow" connections under load, and starting a
# PostgreSQL backend is expensive (benchmarks/HISTORY.md).
POOL_SIZE = 40
POOL_OVERFLOW = 10


def writer_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for the intake. On PostgreSQL a group is one statement, atomic by itself
    (:func:`models.generations.insert_generations`), so it runs in autocommit: no BEGIN and
    COMMIT round trips, each of which waited for the GIL behind the event loop under load."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return make_session_factory(engine)


class AppState:
    """What one app instance owns. Nothing connects until the first request needs it."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.catalogue = load_catalogue(settings.models_file)
        self.publisher = publisher
        self.clock: Callable[[], datetime] = clock or DatabaseClock(lambda: self.engine)
        """The database's time by default: the rows' ``next_poll_at`` (the submit grace) and
        deadlines set here are compared by workers on other hosts (``models/dbclock.py``)."""
        clock = self.clock
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._secret_box: SecretBox | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._writer_sessions: sessionmaker[Session] | None = None
        self._media_store: MediaStore | None = None
        self._media_signer: MediaSigner | None = None
        self.intake = Intake(
            sessions=lambda: self.writer_sessions,
            publisher=publisher,
            limits=IntakeLimits(
                deadline_seconds=settings.job_deadline,
                submit_grace_seconds=settings.submit_grace,
                publish_chunk=settings.submit_batch_size,
            ),
            clock=clock,
        )
        self.proxies = TrustedProxies.parse(settings.trusted_proxies)
        self.streams = StreamWatcher(
            sessions=lambda: self.sessions,
            interval=settings.stream_poll_interval,
            max_per_key=settings.stream_max_per_key,
            fair=settings.max_in_flight > 0,
        )
        self.webhook_policy = AddressPolicy.from_settings(settings)
        """Where client webhooks may go: checked at create (the worker checks at connect)."""
        self.rate_limits = CreateLimiter(url=settings.rate_limit_url)
        self.auth = Authenticator(
            sessions=lambda: self.sessions, ttl=settings.api_key_cache_seconds
        )
        self.fal_keys = JwksCache(
            url=settings.fal_jwks_url,
            ttl=settings.fal_jwks_cache_seconds,
            refresh_interval=settings.fal_jwks_refresh_interval,
        )
        self.webhooks = WebhookSettler(sessions=lambda: self.sessions, clock=clock)
        """Writes verified fal webhooks in groups (``api/fal/settler.py``)."""
        self.count_webhook: Callable[[str], None] = lambda outcome: None
        """Counts one upstream webhook by outcome (``api.metrics`` wires it)."""
        self.observe_terminal: Callable[[str, float], None] = lambda status, seconds: None
        """A webhook ended a job: its status and seconds since creation (``api.metrics``)."""

    @property
    def secret_box(self) -> SecretBox:
        """Opens the tenants' webhook secrets (built on first use: it may create the key file)."""
        with self._lock:
            if self._secret_box is None:
                self._secret_box = secret_box(self.settings)
            return self._secret_box

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._make_engine()
            return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        engine = self.engine
        with self._lock:
            if self._sessions is None:
                self._sessions = make_session_factory(engine)
            return self._sessions

    @property
    def writer_sessions(self) -> sessionmaker[Session]:
        """The intake's sessions (:func:`writer_session_factory`)."""
        engine = self.engine
        with self._lock:
            if self._writer_sessions is None:
                self._writer_sessions = writer_session_factory(engine)
            return self._writer_sessions

    @property
    def media_store(self) -> MediaStore:
        with self._lock:
            if self._media_store is None:
                self._media_store = open_store(
                    self.settings.media_store,
                    endpoint=self.settings.media_s3_endpoint,
                    region=self.settings.media_s3_region,
                )
            return self._media_store

    @property
    def media_signer(self) -> MediaSigner:
        with self._lock:
            if self._media_signer is None:
                key = self.settings.media_signing_key
                self._media_signer = MediaSigner(
                    load_signing_key(
                        key.get_secret_value() if key else None, self.settings.data_dir
                    )
                )
            return self._media_signer

    def media_urls(self, request: Request) -> MediaUrls:
        """How this request's answers name stored files."""
        base = public_base(request, self.settings.public_url, self.proxies)
        presign = presigner(self.settings, self.media_store)
        return MediaUrls(self.media_signer, base, self.settings.media_public_base, presign)

    def _make_engine(self) -> Engine:
        url = normalize_url(self.settings.database_url)
        if make_url(url).get_backend_name() == "postgresql":
            timeout = max(1, round(self.settings.db_connect_timeout))
            return make_engine(
                url,
                connect_args={"connect_timeout": timeout},
                pool_timeout=10,
                pool_size=POOL_SIZE,
                max_overflow=POOL_OVERFLOW,
            )
        return make_engine(url)

    def close(self) -> None:
        self.intake.close()
        self.webhooks.close()
        self.fal_keys.close()
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
                self._sessions = None
                self._writer_sessions = None
        self.publisher.close()


async def get_state(request: Request) -> AppState:
    """``async``: FastAPI runs a plain ``def`` dependency on its thread pool, and a hop to a
    worker thread and back for an attribute lookup costs more than the lookup
    (benchmarks/HISTORY.md)."""
    state: AppState = request.app.state.genqueue
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    """One session per request. Routes commit what they change; anything left is rolled back."""
    session = state.sessions()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def authenticate(request: Request, state: StateDep) -> Caller:
    """The caller of a request (:class:`api.auth.Authenticator`); 401 without a live key."""
    return await state.auth.caller(request.headers.get("authorization"))


CallerDep = Annotated[Caller, Depends(authenticate)]
