"""`genqueue up`: the whole system on one machine, with no outside service.

Embedded Redis (AOF on), SQLite in the data dir, migrations, a dev API key, then the API, a
worker (thread pool: SQLite has one writer, and one process keeps metrics simple), a worker for
client webhook deliveries alone, beat, Flower, and the simulator when no upstream is
configured. Everything lives in the data dir, so a restart
finds its jobs, queue and key again.

The data dir is private to the user (0700, files 0600, made so on every start), Redis listens
on a unix socket inside it and on no TCP port, and secrets go only to the child that uses
them: the upstream key to the worker that calls upstream, Flower's password to Flower.
"""

import json
import os
import shutil
import signal
import threading
from pathlib import Path
from types import FrameType

from rich.console import Console

from genqueue import embedded_redis
from genqueue.database import display_url, migrate, open_database
from genqueue.datadir import DataDir
from genqueue.errors import EXIT_INVALID, CliError
from genqueue.flower_guard import password_problem
from genqueue.net import free_port, port_free
from genqueue.services import load_settings
from genqueue.supervisor import ChildFailed, Supervisor
from genqueue.up_children import (
    FLOWER_PASSWORD_ENV,
    Plan,
    child_env,
    specs,
    worker_env,
)
from models.settings import Settings

console = Console(highlight=False)
START_TIMEOUT = 90.0
PRIVATE_UMASK = 0o077
"""Whatever `up` and its children create (database, AOF, logs, state) is the user's alone."""


def run(*, host: str | None, port: int | None, data_dir: Path | None, verbose: bool) -> None:
    if data_dir is not None:
        os.environ["GENQUEUE_DATA_DIR"] = str(data_dir.expanduser().resolve())
    settings = load_settings()
    flower_problem = settings.flower_password and password_problem(
        settings.flower_user, settings.flower_password.get_secret_value()
    )
    if flower_problem:
        raise CliError(flower_problem, code=EXIT_INVALID)
    os.umask(PRIVATE_UMASK)
    if "GENQUEUE_WEBHOOK_ALLOW_PRIVATE" not in os.environ:
        # One machine, receivers on it: client webhooks may go to any address (the banner says).
        settings = settings.model_copy(update={"webhook_allow_private": True})
    if "GENQUEUE_MEDIA_ALLOW_PRIVATE" not in os.environ:
        # Its simulator serves the output files from 127.0.0.1: copies may reach it.
        settings = settings.model_copy(update={"media_allow_private": True})
    data = DataDir(settings.data_dir.expanduser().resolve())
    data.make_private()
    with data.locked():
        plan = _plan(settings, data, host, port)
        env = child_env(settings, data, plan)
        # The worker's prometheus multiprocess files of earlier runs would be counted again.
        shutil.rmtree(data.root / "metrics", ignore_errors=True)
        migrate(env["GENQUEUE_DATABASE_URL"])
        dev_key = _dev_key(settings, data)
        flower_password = (
            settings.flower_password.get_secret_value()
            if settings.flower_password
            else data.flower_password()
        )
        env[FLOWER_PASSWORD_ENV] = flower_password
        supervisor = Supervisor(
            specs(
                plan,
                data,
                (settings.flower_user, flower_password),
                worker_env=worker_env(settings, plan),
            ),
            env=env,
            log_dir=None if verbose else data.logs,
            say=lambda line: console.print(f"[bold]genqueue up:[/bold] {line}"),
        )
        _serve(supervisor, settings, data, plan, dev_key, flower_password)


def _serve(
    supervisor: Supervisor,
    settings: Settings,
    data: DataDir,
    plan: Plan,
    dev_key: str,
    flower_password: str,
) -> None:
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            console.print("genqueue up: stopping now")
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for child in supervisor.children:
            if stopping.is_set():
                return
            supervisor.start(child)
            supervisor.wait_ready(child, START_TIMEOUT, stop=stopping.is_set)
        if stopping.is_set():
            return
        _publish_state(data, plan, supervisor)
        _banner(settings, data, plan, dev_key, flower_password)
        pids = supervisor.pids()
        while not stopping.wait(0.5):
            supervisor.check()
            if supervisor.pids() != pids:  # a child was restarted
                pids = supervisor.pids()
                _publish_state(data, plan, supervisor)
    except ChildFailed as exc:
        tail = exc.child.log_tail()
        raise CliError(
            f"{exc.message}" + (f" — see {exc.child.log_path}:\n{tail}" if tail else "")
        ) from None
    finally:
        console.print("genqueue up: stopping…")
        supervisor.stop_all()
        data.state_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        console.print("genqueue up: stopped")


def _plan(settings: Settings, data: DataDir, host: str | None, port: int | None) -> Plan:
    host = host or settings.api_host
    api_port = port or settings.api_port
    for name, value, env in (
        ("the API", api_port, "--port"),
        ("Flower", settings.flower_port, "GENQUEUE_FLOWER_PORT"),
    ):
        if not port_free(host if name == "the API" else settings.flower_host, value):
            raise CliError(f"port {value} for {name} is in use; choose another with {env}")
    metrics_port = settings.worker_metrics_port or free_port()
    external_broker = bool(os.environ.get("GENQUEUE_BROKER_URL"))
    if not external_broker and not embedded_redis.socket_fits(data.redis):
        raise CliError(
            f"the data dir {data.root} is too long a path for the embedded Redis's unix socket "
            f"(at most {embedded_redis.MAX_SOCKET_PATH} bytes with "
            f"redis/{embedded_redis.SOCKET_NAME}); choose a shorter --data-dir"
        )
    use_simulator = not (settings.upstream_key_value() or os.environ.get("GENQUEUE_UPSTREAM_URL"))
    return Plan(
        host=host,
        api_port=api_port,
        flower_port=settings.flower_port,
        metrics_port=metrics_port,
        redis_dir=None if external_broker else data.redis,
        simulator_port=_simulator_port(data) if use_simulator else None,
    )


def _simulator_port(data: DataDir) -> int:
    """The simulator's port of the last start, so that the image URLs (and the status URLs)
    it handed out then still answer; a free one the first time, or if another program has
    taken it since."""
    remembered = data.simulator / "port"
    text = data.read_secret(remembered) or ""
    port = int(text) if text.isdigit() else None
    if port is not None and port_free("127.0.0.1", port):
        return port
    chosen = free_port()
    if port is not None:
        console.print(
            f"genqueue up: the simulator's port {port} is taken; it moves to {chosen} "
            f"(image URLs of earlier jobs point at {port})"
        )
    remembered.parent.mkdir(parents=True, exist_ok=True)
    remembered.write_text(f"{chosen}\n")
    return chosen


def _dev_key(settings: Settings, data: DataDir) -> str:
    """The dev key: created once, kept in the data dir, re-created if the database lost it."""
    from models.keys import create_key, find_key
    from models.secretbox import secret_box

    stored = data.read_secret(data.dev_key_file)
    with open_database(settings, migrate_sqlite=False) as session:
        if stored and find_key(session, stored) is not None:
            return stored
        _row, plain = create_key(session, name="dev", box=secret_box(settings))
    data.write_secret(data.dev_key_file, plain)
    return plain


def _publish_state(data: DataDir, plan: Plan, supervisor: Supervisor) -> None:
    state = {
        "pid": os.getpid(),
        "api_url": plan.api_url,
        "flower_url": plan.flower_url,
        "worker_metrics_url": plan.metrics_url,
        "simulator_url": plan.simulator_url,
        "children": {c.name: c.pid for c in supervisor.children},
    }
    data.state_file.write_text(json.dumps(state, indent=2))


def api_metrics_url(settings: Settings, plan: Plan) -> str:
    """Where the API's /metrics answers: its own listener when GENQUEUE_METRICS_PORT is set
    (the API port then answers 404), with a note when it wants a token."""
    if settings.metrics_port:
        host = (
            "127.0.0.1" if settings.metrics_host in ("0.0.0.0", "::", "") else settings.metrics_host
        )
        url = f"http://{host}:{settings.metrics_port}/metrics"
    else:
        url = f"{plan.api_url}/metrics"
    return f"{url} (Bearer token)" if settings.metrics_token else url


def console_url(plan: Plan) -> str:  # the API serves the console itself
    return f"{plan.api_url}/console"


def _banner(
    settings: Settings, data: DataDir, plan: Plan, dev_key: str, flower_password: str
) -> None:
    upstream = (
        f"simulator at {plan.simulator_url} (no upstream key set)"
        if plan.simulator_url
        else f"{settings.upstream_url} ({settings.upstream_auth_scheme} auth, key "
        f"{'set' if settings.upstream_key_value() else 'not set'})"
    )
    rows = [
        ("API", f"{plan.api_url}   (docs: {plan.api_url}/docs)"),
        ("Console", f"{console_url(plan)}   (sign in with the dev key)"),
        ("Flower", f"{plan.flower_url}   user {settings.flower_user}, password {flower_password}"),
        ("Metrics", f"{api_metrics_url(settings, plan)}   worker: {plan.metrics_url}"),
        ("Dev key", dev_key),
        ("Upstream", upstream),
        ("Webhooks", _webhook_policy(settings)),
        ("Database", display_url(settings.database_url)),
        ("Data", f"{data.root}   (logs in {data.logs})"),
    ]
    console.print("[bold green]genqueue is up[/bold green]")
    for label, value in rows:
        console.print(f"  [bold]{label:<9}[/bold] {value}", soft_wrap=True)
    console.print(
        f"  Try: GENQUEUE_API_URL={plan.api_url} GENQUEUE_API_KEY={dev_key} "
        'genqueue submit "a tiger eye, the word FLUX painted over it" --wait --out ./images',
        soft_wrap=True,
    )
    console.print("  Ctrl-C stops everything.")


def _webhook_policy(settings: Settings) -> str:
    if settings.webhook_allow_private:
        return "may go to any address, private ones too (GENQUEUE_WEBHOOK_ALLOW_PRIVATE=true)"
    return "public addresses only (GENQUEUE_WEBHOOK_ALLOW_PRIVATE=false)"
