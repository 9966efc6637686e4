"""`genqueue up` keeps to its user: a private data dir (also one an earlier version left open),
a Redis that no other user can reach, the upstream key only in the worker's environment, and
Flower's every route behind its password."""

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from genqueue.net import free_port, wait_until
from tests.cli.test_up import all_gone, start_up, stop
from tests.support.leaks import marked

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

UPSTREAM_KEY = "upstream-key-" + os.urandom(8).hex()
FAL_KEY = "fal-key-" + os.urandom(8).hex()


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A directory any user may pass through (pytest's own temp dirs are 0700 all the way
    up, which would hide a data dir from other users whatever its own modes)."""
    path = Path(tempfile.mkdtemp(prefix=marked("gq-up-")))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


NOBODY = 65534
AS_NOBODY = """
import os, socket, sys
action, path = sys.argv[1:]
os.setgroups([])
os.setgid(int(os.environ["NOBODY"]))
os.setuid(int(os.environ["NOBODY"]))
try:
    if action == "connect":
        socket.socket(socket.AF_UNIX).connect(path)
    else:
        open(path, "rb").read(1)
    print("done")
except OSError as exc:
    print(type(exc).__name__)
"""


def as_nobody(action: str, path: Path) -> str:
    """As the unprivileged user ``nobody``, ``connect`` to a unix socket or ``read`` a file:
    the name of the ``OSError`` that stopped it, or "done". (Python starts as root and drops
    to nobody itself: nobody may not run the interpreter where it is installed.)"""
    run = subprocess.run(
        [sys.executable, "-I", "-c", AS_NOBODY, action, str(path)],
        env={**os.environ, "NOBODY": str(NOBODY)},
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def loose_data_dir(data: Path) -> None:
    """A data dir as genqueue used to leave it: 0755, its database and a log 0644."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENQUEUE_")}
    env["GENQUEUE_DATA_DIR"] = str(data)
    migrated = subprocess.run(
        [sys.executable, "-m", "genqueue", "migrate"], env=env, capture_output=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    (data / "logs").mkdir()
    (data / "logs" / "api.log").write_text("an old line\n")
    for path in (data, data / "logs"):
        path.chmod(0o755)
    for path in (data / "genqueue.db", data / "logs" / "api.log"):
        path.chmod(0o644)


def environments(pid: int) -> list[str]:
    """The environment of ``pid`` and of every process it started, as text."""
    process = psutil.Process(pid)
    found = []
    for proc in [process, *process.children(recursive=True)]:
        try:
            found.append("\n".join(f"{k}={v}" for k, v in proc.environ().items()))
        except psutil.NoSuchProcess:
            continue
    return found


def test_up_keeps_its_data_broker_and_secrets_to_itself(tmp_path: Path, open_parent: Path) -> None:
    data = open_parent / "data"
    loose_data_dir(data)
    up = start_up(
        tmp_path,
        data,
        "private",
        {
            "GENQUEUE_UPSTREAM_KEY": UPSTREAM_KEY,
            "FAL_KEY": FAL_KEY,
            # An upstream that is not there: this test submits nothing.
            "GENQUEUE_UPSTREAM_URL": f"http://127.0.0.1:{free_port()}",
        },
    )
    try:
        children = up.state()["children"]
        assert isinstance(children, dict)
        assert set(children) == {"redis", "api", "worker", "webhooks", "beat", "flower"}

        # The data dir and everything in it, the old files too, are the user's alone.
        loose = [
            f"{oct(path.lstat().st_mode & 0o777)} {path}"
            for path in [data, *data.rglob("*")]
            if (path.is_dir() and path.lstat().st_mode & 0o777 != 0o700)
            or (path.is_file() and path.lstat().st_mode & 0o777 != 0o600)
        ]
        assert not loose, loose
        assert {"genqueue.db", "up.lock", "dev-api-key", "flower-password"} <= {
            p.name for p in data.iterdir()
        }
        assert (data / "redis" / "appendonly.aof").exists()

        # Redis: no TCP port at all, a socket 0700 in the data dir, which the others use.
        redis = psutil.Process(int(children["redis"]))
        assert redis.net_connections(kind="inet") == []
        sock = data / "redis" / "redis.sock"
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert sock.stat().st_mode & 0o777 == 0o700
        [worker_env] = environments(int(children["worker"]))
        assert f"GENQUEUE_BROKER_URL=redis+socket://{sock}" in worker_env.splitlines()
        with socket.socket(socket.AF_UNIX) as own:
            own.connect(str(sock))  # the user's own processes can

        if os.geteuid() == 0:  # runuser needs root; the modes above say the same
            assert as_nobody("connect", sock) == "PermissionError"
            assert as_nobody("read", data / "genqueue.db") == "PermissionError"
            assert as_nobody("read", data / "dev-api-key") == "PermissionError"

        # The upstream key reaches the worker that calls upstream, and no other process.
        assert UPSTREAM_KEY in worker_env
        for name, pid in children.items():
            if name == "worker":
                continue
            for env in environments(int(pid)):
                assert UPSTREAM_KEY not in env, f"{name} has the upstream key"
                assert FAL_KEY not in env, f"{name} has FAL_KEY"
                if name != "flower":
                    assert "GENQUEUE_FLOWER_PASSWORD" not in env, f"{name} has Flower's password"

        # Flower: /metrics and /healthcheck want the password like every other route.
        password = (data / "flower-password").read_text().strip()
        with httpx.Client(base_url=up.flower_url, timeout=10) as flower:
            for route in ("/metrics", "/healthcheck", "/api/workers"):
                assert flower.get(route).status_code == 401, route
                assert flower.get(route, auth=("admin", "wrong-password")).status_code == 401
            assert flower.get("/healthcheck", auth=("admin", password)).text == "OK"
            metrics = flower.get("/metrics", auth=("admin", password))
            assert metrics.status_code == 200
            assert "flower_" in metrics.text
            # Flower's broker view reads queue lengths over the socket too.
            wait_until(
                lambda: (
                    flower.get("/api/queues/length", auth=("admin", password))
                    .json()
                    .get("active_queues")
                ),
                60,
                interval=0.5,
                what="Flower's queue lengths over the socket",
            )
    finally:
        family = stop(up, signal.SIGTERM)
    assert up.proc.returncode == 0, up.text()
    assert wait_until(lambda: all_gone(family), 30, what="no child left after SIGTERM")
