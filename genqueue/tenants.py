"""`genqueue tenants set|list|webhook-secret`: per-tenant caps, rates, weights and budgets, and
the tenant's webhook signing secret, in the database."""

from typing import Annotated, Any

import typer
from rich.text import Text
from sqlalchemy import select

from genqueue.columns import Column
from genqueue.database import open_database
from genqueue.errors import EXIT_INVALID, CliError
from genqueue.render import print_columns, stdout_console
from genqueue.services import load_settings

tenants_app = typer.Typer(
    help="Per-tenant limits, weights, budgets and webhook secrets.", no_args_is_help=True
)
out = stdout_console()
NONE = "none"


def _number(option: str, value: str | None, kind: type[int] | type[float]) -> Any:
    """An option's value: absent (unchanged), ``none`` (cleared) or a number of ``kind``."""
    if value is None or value.strip().lower() == NONE:
        return None
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        message = f"{option} must be {what} or 'none', got {value!r}"
        raise CliError(message, code=EXIT_INVALID) from None


@tenants_app.command("set")
def set_(
    tenant: Annotated[str, typer.Argument(help="The tenant's name (see `genqueue keys list`).")],
    max_in_flight: Annotated[
        str | None,
        typer.Option(metavar="N|none", help="Its jobs live upstream at once (none: no cap)."),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(metavar="R|none", help="Creates per second (none: unlimited)."),
    ] = None,
    burst: Annotated[
        str | None,
        typer.Option(metavar="B|none", help="Creates allowed at once (default: the rate)."),
    ] = None,
    weight: Annotated[
        str | None, typer.Option(metavar="W", help="Its share under contention (default 1).")
    ] = None,
    monthly_budget: Annotated[
        str | None,
        typer.Option(metavar="USD|none", help="Spend a calendar month (none: no budget)."),
    ] = None,
) -> None:
    """Change a tenant's settings; they apply at once to new claims and creates."""
    from models.tenants import UnknownTenant, set_tenant

    given = {
        "max_in_flight": _number("--max-in-flight", max_in_flight, int),
        "rate_limit": _number("--rate-limit", rate_limit, float),
        "burst": _number("--burst", burst, int),
        "weight": _number("--weight", weight, float),
        "monthly_budget": _number("--monthly-budget", monthly_budget, float),
    }
    raw = [max_in_flight, rate_limit, burst, weight, monthly_budget]
    changes = {k: v for (k, v), r in zip(given.items(), raw, strict=True) if r is not None}
    if not changes:
        raise CliError("nothing to change: give at least one option", code=EXIT_INVALID)
    with open_database(load_settings()) as session:
        try:
            set_tenant(session, tenant, changes)
        except UnknownTenant:
            raise CliError(
                f"no tenant named {tenant!r} (create one with `genqueue keys create NAME "
                f"--tenant {tenant}`)"
            ) from None
        except ValueError as exc:
            raise CliError(str(exc), code=EXIT_INVALID) from None
    typer.echo(f"tenant {tenant}: " + ", ".join(f"{k}={_shown(v)}" for k, v in changes.items()))


def _shown(value: Any) -> str:
    if value is None:
        return NONE
    return f"{value:g}" if isinstance(value, float) else str(value)


@tenants_app.command("list")
def list_() -> None:
    """List tenants: settings, and jobs live upstream and pending now."""
    from models.tenants import list_tenants

    with open_database(load_settings()) as session:
        rows = list_tenants(session)
    if not rows:
        typer.echo("no tenants yet: create one with `genqueue keys create NAME`", err=True)
        return

    def cells(values: list[Any]) -> list[Text]:
        return [Text("" if v is None else _shown(v)) for v in values]

    print_columns(
        out,
        [
            Column("tenant", [Text(r.name) for r in rows], flex=8),
            Column("max", cells([r.max_in_flight for r in rows]), align="right"),
            Column("rate/s", cells([r.rate_limit for r in rows]), align="right"),
            Column("burst", cells([r.burst for r in rows]), align="right"),
            Column("weight", cells([r.weight for r in rows]), align="right"),
            Column("budget", cells([r.monthly_budget for r in rows]), align="right"),
            Column("live", cells([r.live for r in rows]), align="right"),
            Column("pending", cells([r.pending for r in rows]), align="right"),
        ],
    )


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
