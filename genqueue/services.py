"""Server commands: api, worker, beat, flower, simulator, migrate (each one process)."""

import os
import shutil
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from genqueue.database import display_url, migrate
from genqueue.datadir import DataDir
from genqueue.errors import EXIT_INVALID, CliError
from genqueue.flower_guard import password_problem, require_auth_everywhere
from models.settings import Settings

PASSTHROUGH: dict[str, Any] = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],
}
FLOWER_COLUMNS = "name,uuid,state,args,received,started,runtime,worker"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        raise CliError(f"invalid settings: {problems}", code=EXIT_INVALID) from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    """One setting's problem: its variable and pydantic's message; a check across settings
    (no ``loc``) names its variables itself, so it is its message alone."""
    message = message.removeprefix("Value error, ")
    if not loc:
        return message
    return f"GENQUEUE_{'_'.join(str(p) for p in loc).upper()}: {message}"


def _data_dir(settings: Settings) -> DataDir:
    data = DataDir(settings.data_dir.expanduser().resolve())
    data.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    return data


def api(
    host: Annotated[str | None, typer.Option(help="Interface (default GENQUEUE_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default GENQUEUE_API_PORT).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Processes (default GENQUEUE_API_WORKERS).")
    ] = None,
) -> None:
    """Run the HTTP API (uvicorn)."""
    settings = load_settings()
    from api.main import serve

    serve(host or settings.api_host, port or settings.api_port, settings, workers=workers)


def worker(ctx: typer.Context) -> None:
    """Run a Celery worker; other arguments go to `celery worker` (e.g. --concurrency 8)."""
    settings = load_settings()
    _prepare_metrics_dir(settings)
    from worker import metrics
    from worker.celery import app as celery_app

    metrics.install(celery_app, settings)
    code = celery_app.worker_main(["worker", *ctx.args])
    if code:
        raise typer.Exit(int(code))


def _prepare_metrics_dir(settings: Settings) -> None:
    """A prefork pool records metrics in its children: give them prometheus_client's shared
    directory (wiped, since the files of a previous run would be counted again)."""
    port = settings.worker_metrics_port
    if port is None or os.environ.get(MULTIPROC_ENV):
        return
    path = _data_dir(settings).metrics(port or os.getpid())
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


def beat(ctx: typer.Context) -> None:
    """Run Celery beat (the ~1 s dispatch tick and the reconciler); other arguments go to it."""
    settings = load_settings()
    data = _data_dir(settings)
    from worker.celery import app as celery_app

    code = celery_app.start(["beat", "--schedule", str(data.beat_schedule), *ctx.args])
    if code:
        raise typer.Exit(int(code))


def flower(ctx: typer.Context) -> None:
    """Run Flower behind basic auth (GENQUEUE_FLOWER_USER/PASSWORD), on every route.

    A placeholder password (change-me, password, …) is refused. Its state is kept in the data
    dir. Other arguments go to Flower (e.g. --port=5556)."""
    settings = load_settings()
    if settings.flower_password is None:
        raise CliError(
            "Flower needs a password: set GENQUEUE_FLOWER_PASSWORD (and GENQUEUE_FLOWER_USER, "
            f"default {settings.flower_user!r})",
            code=EXIT_INVALID,
        )
    password = settings.flower_password.get_secret_value()
    if ":" in settings.flower_user or "," in password or "," in settings.flower_user:
        raise CliError("GENQUEUE_FLOWER_USER must not contain ':' or ','; the password no ','")
    problem = password_problem(settings.flower_user, password)
    if problem:
        raise CliError(problem, code=EXIT_INVALID)
    require_auth_everywhere()
    data = _data_dir(settings)
    data.flower_db.parent.mkdir(parents=True, exist_ok=True)
    # Through the environment, not argv: `ps` shows argv to every user of the machine.
    os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{password}"
    from worker.celery import app as celery_app

    argv = [
        "flower",
        f"--address={settings.flower_host}",
        f"--port={settings.flower_port}",
        "--persistent=True",
        f"--db={data.flower_db}",
        "--state_save_interval=30000",
        f"--tasks_columns={FLOWER_COLUMNS}",
        "--purge_offline_workers=600",
        *ctx.args,
    ]
    code = celery_app.start(argv)
    if code:
        raise typer.Exit(int(code))


def simulator(ctx: typer.Context) -> None:
    """Run the fal-queue simulator (an offline upstream).

    Arguments go to it; see `genqueue simulator --help`."""
    import simulator as sim

    main = getattr(sim, "main", None)
    if main is None:
        raise CliError("this installation's simulator package has no main()")
    code = main(list(ctx.args))
    if code:
        raise typer.Exit(int(code))


def migrate_command() -> None:
    """Apply the database migrations (safe to run again)."""
    settings = load_settings()
    migrate(settings.database_url)
    typer.echo(f"database {display_url(settings.database_url)} is at the latest schema")


def register(app: typer.Typer) -> None:
    panel = "Server"
    app.command(rich_help_panel=panel)(api)
    app.command(context_settings=PASSTHROUGH, add_help_option=False, rich_help_panel=panel)(worker)
    app.command(context_settings=PASSTHROUGH, add_help_option=False, rich_help_panel=panel)(beat)
    app.command(context_settings=PASSTHROUGH, add_help_option=False, rich_help_panel=panel)(flower)
    app.command(context_settings=PASSTHROUGH, add_help_option=False, rich_help_panel=panel)(
        simulator
    )
    app.command("migrate", rich_help_panel=panel)(migrate_command)
