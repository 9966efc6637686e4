"""`genqueue models list|show`: the model catalogue this configuration serves (the built-ins and
``GENQUEUE_MODELS_FILE``), read locally, as ``GET /v1/models`` answers it."""

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from genqueue.columns import Column
from genqueue.errors import EXIT_INVALID, CliError
from genqueue.render import print_columns, stdout_console
from genqueue.services import load_settings

if TYPE_CHECKING:
    from models.catalogue import Catalogue, ModelEntry

models_app = typer.Typer(help="The models genqueue accepts (its catalogue).", no_args_is_help=True)
out = stdout_console()
SUMMARY_CELLS = 16


def _catalogue() -> "Catalogue":
    """Imported on use: the other commands start without jsonschema."""
    from models.catalogue import CatalogueError, load_catalogue

    try:
        return load_catalogue(load_settings().models_file)
    except CatalogueError as exc:
        raise CliError(f"GENQUEUE_MODELS_FILE: {exc}", code=EXIT_INVALID) from None


def _price(entry: "ModelEntry") -> str:
    return "-" if entry.unit_price is None else f"${entry.unit_price:g}/{entry.unit}"


@models_app.command("list")
def list_(
    as_json: Annotated[
        bool, typer.Option("--json", help="Every entry in full (schemas too), as JSON.")
    ] = False,
) -> None:
    """List the models: endpoint id, output kind, price, expected run time, summary."""
    catalogue = _catalogue()
    entries = list(catalogue.values())
    if as_json:
        typer.echo(json.dumps([e.public() for e in entries], indent=2))
        return
    print_columns(
        out,
        [
            Column("endpoint id", [Text(e.endpoint_id) for e in entries]),
            Column("kind", [Text(str(e.output_kind)) for e in entries]),
            Column("price", [Text(_price(e)) for e in entries], optional=True),
            Column(
                "run",
                [Text(f"{e.expected_run_seconds:g}s") for e in entries],
                align="right",
                optional=True,
            ),
            Column("source", [Text(e.source) for e in entries], optional=True),
            Column("summary", [Text(e.summary) for e in entries], flex=SUMMARY_CELLS),
        ],
    )


@models_app.command("show")
def show(
    endpoint_id: Annotated[str, typer.Argument(help="The model's endpoint id.")],
) -> None:
    """One model in full, as JSON: input schema, example, price, expected run time."""
    entry = _catalogue().get(endpoint_id.strip("/"))
    if entry is None:
        raise CliError(
            f"no model {endpoint_id!r} in the catalogue (see `genqueue models list`)",
            code=EXIT_INVALID,
        )
    typer.echo(json.dumps(entry.public(), indent=2))
