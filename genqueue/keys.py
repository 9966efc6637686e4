"""`genqueue keys create|list|revoke`: API keys, straight in the database."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.text import Text
from sqlalchemy.orm import Session

from genqueue.columns import Column
from genqueue.database import open_database
from genqueue.errors import EXIT_INVALID, CliError
from genqueue.render import SHORT_TIME, print_columns, stdout_console
from genqueue.services import load_settings

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
out = stdout_console()
KEY_TIME = "%Y-%m-%d %H:%M"
NAME_CELLS = 8
"""Cells a key's name and tenant keep in a narrow terminal."""


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
    from models.secretbox import secret_box

    name = _named("NAME", name)
    tenant = None if tenant is None else _named("--tenant", tenant)
    settings = load_settings()
    with open_database(settings) as session:
        box = secret_box(settings)  # a new tenant gets its webhook signing secret now
        _row, plain = create_key(session, name=name, tenant_name=tenant, box=box)
    # stdout carries the key and nothing else: `export GENQUEUE_API_KEY=$(genqueue keys create x)`
    typer.echo(plain)


def _named(what: str, value: str) -> str:
    """A key's or tenant's name: what people recognise it by, so never blank."""
    if not value.strip():
        raise CliError(f"{what} must not be empty or blank", code=EXIT_INVALID)
    if value != value.strip():
        raise CliError(f"{what} must not begin or end with a space: {value!r}", code=EXIT_INVALID)
    return value


@keys_app.command("list")
def list_() -> None:
    """List keys (their prefixes, never the keys)."""
    from models.keys import list_keys

    with _session() as session:
        keys = list_keys(session)
        names = [(str(k.id), k.prefix, k.name, k.tenant.name) for k in keys]
        created = [k.created_at for k in keys]
        revoked = [k.revoked_at for k in keys]
    if not keys:
        typer.echo("no keys yet: create one with `genqueue keys create NAME`", err=True)
        return

    def times(moments: Sequence[datetime | None], fmt: str) -> list[Text]:
        return [Text(m.strftime(fmt) if m else "") for m in moments]

    print_columns(
        out,
        [
            Column("id", [Text(n[0]) for n in names], optional=True),
            Column("prefix", [Text(n[1]) for n in names]),
            Column("name", [Text(n[2]) for n in names], flex=NAME_CELLS),
            Column("tenant", [Text(n[3]) for n in names], flex=NAME_CELLS),
            Column("created", times(created, KEY_TIME), short=times(created, SHORT_TIME)),
            Column("revoked", times(revoked, KEY_TIME), short=times(revoked, SHORT_TIME)),
        ],
    )


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
