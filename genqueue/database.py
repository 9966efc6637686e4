"""Database access for CLI commands: clear errors instead of driver tracebacks."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from genqueue.errors import CliError
from models.settings import Settings


def display_url(url: str) -> str:
    """The URL without its password, fit to print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def migrate(database_url: str) -> None:
    from migrations.runner import upgrade

    try:
        upgrade(database_url)
    except OperationalError as exc:
        raise CliError(
            f"cannot migrate the database at {display_url(database_url)}: {_first_line(exc)}"
        ) from None


@contextmanager
def open_database(settings: Settings, *, migrate_sqlite: bool = True) -> Iterator[Session]:
    """One unit of work on the configured database. An embedded SQLite file is migrated
    first (so `genqueue keys create` works before the first `genqueue up`); a server database
    must have been migrated with `genqueue migrate`."""
    from models.db import make_engine, make_session_factory, session_scope

    url = settings.database_url
    if migrate_sqlite and make_url(url).get_backend_name() == "sqlite":
        migrate(url)
    engine = make_engine(url)
    try:
        _check_schema(engine, url)
        with session_scope(make_session_factory(engine)) as session:
            yield session
    except (OperationalError, ProgrammingError) as exc:
        raise CliError(f"database error at {display_url(url)}: {_first_line(exc)}") from None
    finally:
        engine.dispose()


def _check_schema(engine: object, url: str) -> None:
    try:
        tables = set(inspect(engine).get_table_names())
    except OperationalError as exc:
        raise CliError(
            f"cannot connect to the database at {display_url(url)}: {_first_line(exc)}"
        ) from None
    if "api_keys" not in tables:
        raise CliError(
            f"the database at {display_url(url)} has no genqueue tables: run `genqueue migrate`"
        )


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
