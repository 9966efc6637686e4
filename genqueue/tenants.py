"""`genqueue tenants webhook-secret TENANT [--rotate]`: a tenant's webhook signing secret."""

from typing import Annotated

import typer
from sqlalchemy import select

from genqueue.database import open_database
from genqueue.errors import EXIT_INVALID, CliError
from genqueue.services import load_settings

tenants_app = typer.Typer(help="A tenant's webhook signing secret.", no_args_is_help=True)


@tenants_app.command("webhook-secret")
def webhook_secret(
    tenant: Annotated[str, typer.Argument(help="The tenant's name (`genqueue keys list`).")],
    rotate: Annotated[
        bool,
        typer.Option("--rotate", help="Replace it; the old one also signs for 24 h after this."),
    ] = False,
) -> None:
    """Print the secret the tenant's webhooks are signed with (the last line, nothing else
    on stdout): `SECRET=$(genqueue tenants webhook-secret acme)`."""
    from models.secretbox import SecretUnreadable, secret_box
    from models.tables import Tenant
    from models.types import utcnow
    from models.webhook_secrets import current_secret
    from models.webhook_secrets import rotate as rotate_secret

    settings = load_settings()
    box = secret_box(settings)
    try:
        with open_database(settings) as session:
            tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == tenant))
            if tenant_id is None:
                raise CliError(f"no tenant named {tenant!r}", code=EXIT_INVALID)
            if rotate:
                secret = rotate_secret(session, box, tenant_id, now=utcnow())
            else:
                secret = current_secret(session, box, tenant_id)
    except SecretUnreadable as exc:
        raise CliError(str(exc)) from None
    typer.echo(secret)
