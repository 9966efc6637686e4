"""`genqueue keys create|list|revoke`: API keys, straight in the database."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from genqueue.database import open_database
from genqueue.errors import CliError
from genqueue.render import stdout_console
from genqueue.services import load_settings

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
out = stdout_console()


@contextmanager
def _session() -> Iterator[Session]:
    with open_database(load_settings()) as session:
        yield session


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name for the key (also its tenant's name).")],
    tenant: Annotated[
        str | None, typer.Option(help="Tenant that owns it (default: a tenant named NAME).")
    ] = None,
) -> None:
    """Create a key and print it. It is shown this once: only its hash is stored."""
    from models.keys import create_key

    with _session() as session:
        _row, plain = create_key(session, name=name, tenant_name=tenant)
    # stdout carries the key and nothing else: `export GENQUEUE_API_KEY=$(genqueue keys create x)`
    typer.echo(plain)


@keys_app.command("list")
def list_() -> None:
    """List keys (their prefixes, never the keys)."""
    from models.keys import list_keys

    with _session() as session:
        rows = [
            (str(k.id), k.prefix, k.name, k.tenant.name, k.created_at, k.revoked_at)
            for k in list_keys(session)
        ]
    table = Table()
    for column in ("id", "prefix", "name", "tenant", "created", "revoked"):
        table.add_column(column, no_wrap=column in ("id", "prefix"))
    for key_id, prefix, name, tenant, created, revoked in rows:
        table.add_row(
            key_id,
            prefix,
            name,
            tenant,
            created.strftime("%Y-%m-%d %H:%M"),
            revoked.strftime("%Y-%m-%d %H:%M") if revoked else "",
        )
    out.print(table)


@keys_app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(metavar="ID_OR_PREFIX", help="Key id or prefix.")],
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from models.keys import revoke_key

    with _session() as session:
        if not revoke_key(session, key_id_or_prefix=key):
            raise CliError(f"no live key with id or prefix {key!r} (see `genqueue keys list`)")
    typer.echo(f"revoked {key}")
