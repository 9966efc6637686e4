"""`genqueue up`'s embedded Redis keeps its append-only file bounded under broker traffic."""

import subprocess
from pathlib import Path

import redis

from genqueue.embedded_redis import answers, redis_argv, socket_path
from genqueue.net import wait_until

MB = 1024 * 1024


def test_the_append_only_file_stays_bounded_under_churn(tmp_path: Path) -> None:
    """24 MB of messages pushed and popped (what a broker does all day) leave a few MB of
    append-only file, not 24: it is rewritten to the live data whenever it passes 4 MB."""
    directory = tmp_path / "redis"
    proc = subprocess.Popen(
        redis_argv(directory=directory), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: answers(directory), 20, what="the embedded redis")
        conn = redis.Redis(unix_socket_path=str(socket_path(directory)))
        message = b"m" * 8192

        def settled() -> bool:
            """No rewrite running, and none due (redis checks ten times a second)."""
            info = conn.info("persistence")
            if info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]:
                return False
            size, base = info["aof_current_size"], info["aof_base_size"]
            return bool(size < 4 * MB or size < 2 * base)

        for _ in range(24):  # 1 MB at a time, as traffic comes: a rewrite can keep up
            pipe = conn.pipeline(transaction=False)
            for _ in range(MB // len(message)):
                pipe.lpush("celery", message)
                pipe.rpop("celery")
            pipe.execute()
            wait_until(settled, 30, interval=0.05, what="the AOF rewrite to finish")
        on_disk = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        assert on_disk < 12 * MB, f"{on_disk / MB:.1f} MB of append-only file for 24 MB sent"
        assert conn.llen("celery") == 0
        conn.close()
    finally:
        proc.terminate()
        proc.wait(10)
