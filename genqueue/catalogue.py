"""`genqueue models list|show|import`: the model catalogue this configuration serves (the
built-ins and ``GENQUEUE_MODELS_FILE``), read locally, as ``GET /v1/models`` answers it; and
fal's OpenAPI document of a model turned into an entry of that file."""

import json
import os
from pathlib import Path
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


@models_app.command("import")
def import_(
    endpoint_id: Annotated[str, typer.Argument(help="The model's fal endpoint id.")],
    openapi: Annotated[
        Path,
        typer.Option(
            "--openapi",
            help="fal's OpenAPI document of the endpoint (JSON or YAML), as "
            "https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=ID serves it.",
        ),
    ],
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            help="Append the entry to this models file (GENQUEUE_MODELS_FILE; created if "
            "missing) instead of printing it.",
        ),
    ] = None,
    summary: Annotated[str | None, typer.Option(help="One line saying what it does.")] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="Output kind (image, video, audio, 3d, text, other); else guessed."),
    ] = None,
    price: Annotated[
        float | None, typer.Option(help="USD per job (fal's price); else unpriced.", min=0)
    ] = None,
    run_seconds: Annotated[
        float | None,
        typer.Option(help="Expected run time in seconds (fal's estimate); else typical.", min=0.1),
    ] = None,
) -> None:
    """Turn fal's OpenAPI document of one endpoint into a catalogue entry (checked like the
    built-ins), printed as YAML or appended to a models file."""
    from models.catalogue import CatalogueError, OutputKind
    from models.catalogue.openapi import appended, entry_from_openapi, entry_yaml, load_document

    try:
        output_kind = None if kind is None else OutputKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in OutputKind)
        raise CliError(f"--kind: {kind!r} is not one of {choices}", code=EXIT_INVALID) from None
    try:
        text = openapi.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--openapi {openapi}: cannot read: {exc}", code=EXIT_INVALID) from None
    try:
        document = load_document(text, source=str(openapi))
        entry = entry_from_openapi(
            document,
            endpoint_id,
            summary=summary,
            output_kind=output_kind,
            unit_price=price,
            expected_run_seconds=run_seconds,
        )
        if into is None:
            typer.echo(entry_yaml(entry), nl=False)
            return
        existing = into.read_text(encoding="utf-8") if into.exists() else ""
        updated = appended(existing, entry, source=str(into))
    except CatalogueError as exc:
        raise CliError(str(exc), code=EXIT_INVALID) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--into {into}: cannot read: {exc}", code=EXIT_INVALID) from None
    _write_atomically(into, updated)
    typer.echo(f"added {entry['endpoint_id']} to {into}")


def _write_atomically(path: Path, text: str) -> None:
    """A reader (genqueue starting) sees the old file or the new one, never half of one."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise CliError(f"--into {path}: cannot write: {exc.strerror or exc}") from None
