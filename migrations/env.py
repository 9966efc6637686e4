"""Alembic environment: the URL comes from the config (set by `genqueue migrate`) or GENQUEUE_*."""

from typing import Any, Literal

from alembic import context
from sqlalchemy import Connection

from models.db import make_engine, normalize_url
from models.settings import Settings
from models.tables import Base
from models.types import UTCDateTime

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return normalize_url(config.get_main_option("sqlalchemy.url") or Settings().database_url)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Autogenerate writes genqueue's own column types by name, with their import."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("from models.types import UTCDateTime")
        return "UTCDateTime()"
    return False


DIALECT_ONLY_INDEXES = frozenset({"ix_generations_prompt_trgm"})
"""Indexes a migration makes on PostgreSQL alone, which the models do not declare (0009)."""


def _include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    return not (type_ == "index" and reflected and name in DIALECT_ONLY_INDEXES)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_object=_include_object,
    )


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
