"""`genqueue usage [--tenant T]`: generations and their cost, by model and status.

Without ``--tenant`` it asks the API (``GET /v1/usage``) for the configured key's tenant; with
it, an operator reads any tenant's usage straight from the database, like `genqueue tenants`.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.text import Text

from genqueue.columns import Column
from genqueue.errors import EXIT_INVALID, CliError
from genqueue.render import print_columns, stdout_console

out = stdout_console()


def _when(option: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"{option} must be an ISO date or time (e.g. 2026-11-01), got {value!r}",
            code=EXIT_INVALID,
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def usage(
    tenant: Annotated[
        str | None, typer.Option(help="Any tenant's, from the database (operators).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Created from (ISO; default: start of this month).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Created before (ISO; default: now).")] = None,
) -> None:
    """Generations and their cost (USD) by model and status: your key's tenant, or --tenant."""
    start, end = _when("--since", since), _when("--until", until)
    if start and end and start >= end:
        raise CliError("--since must be before --until", code=EXIT_INVALID)
    if tenant is None:
        from genqueue.generations import _client

        with _client() as client:
            answer = client.usage(
                since=start.isoformat() if start else None,
                until=end.isoformat() if end else None,
            )
        lines = [line for line in answer["lines"] if isinstance(line, dict)]
        _print(str(answer.get("tenant", "")), lines)
        return
    _print(tenant, _from_database(tenant, start, end))


def _from_database(
    tenant: str, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from genqueue.database import open_database
    from genqueue.services import load_settings
    from models.tables import Tenant
    from models.types import utcnow
    from models.usage import month_start, usage

    now = utcnow()
    with open_database(load_settings()) as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == tenant))
        if tenant_id is None:
            raise CliError(f"no tenant named {tenant!r} (see `genqueue tenants list`)")
        rows = usage(session, tenant_id, since=start or month_start(now), until=end or now)
    return [
        {
            "model": r.model,
            "status": r.status,
            "count": r.count,
            "estimated_cost": r.estimated_cost,
            "final_cost": r.final_cost,
        }
        for r in rows
    ]


def _print(tenant: str, lines: list[dict[str, Any]]) -> None:
    if not lines:
        typer.echo(f"tenant {tenant}: no generations in that time", err=True)
        return

    def usd(key: str) -> list[Text]:
        return [Text(f"{float(line.get(key) or 0):.4f}") for line in lines]

    total = {
        "model": "total",
        "status": "",
        "count": sum(int(line.get("count") or 0) for line in lines),
        "estimated_cost": sum(float(line.get("estimated_cost") or 0) for line in lines),
        "final_cost": sum(float(line.get("final_cost") or 0) for line in lines),
    }
    lines = [*lines, total]
    print_columns(
        out,
        [
            Column("model", [Text(str(line.get("model"))) for line in lines], flex=12),
            Column("status", [Text(str(line.get("status"))) for line in lines]),
            Column("count", [Text(str(line.get("count"))) for line in lines], align="right"),
            Column("estimated USD", usd("estimated_cost"), align="right"),
            Column("final USD", usd("final_cost"), align="right"),
        ],
    )
