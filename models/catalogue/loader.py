"""Reading catalogue files: the built-in ones shipped in ``models/catalogue/builtin/`` and the
operator's ``GENQUEUE_MODELS_FILE`` (YAML or JSON; JSON is YAML too).

A file is ``{"models": [entry, …]}`` (plus ``definitions``, a place for YAML anchors that is
otherwise ignored). Each entry is checked before anything uses it: its fields and their types,
its ``input_schema`` a valid JSON Schema (Draft 2020-12) for an object, its ``example`` valid
against that schema. A bad file is refused whole with one readable line naming the entry and
the field (:class:`CatalogueError`); genqueue does not start on half a catalogue.
"""

import copy
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.catalogue.entry import ModelEntry, OutputKind
from models.catalogue.validation import InputInvalid, InputValidator

ENDPOINT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)+$"
"""``owner/app[/path…]``: at least two segments of URL-safe characters."""
BUILTIN_PACKAGE = "models.catalogue.builtin"


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; the message names the file, entry and field."""


class EntryFields(BaseModel):
    """An entry as written in a file (the YAML/JSON keys)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    endpoint_id: Annotated[str, Field(pattern=ENDPOINT_ID_PATTERN, max_length=200)]
    summary: Annotated[str, Field(min_length=1, max_length=200)]
    output_kind: OutputKind = Field(strict=False)
    input_schema: dict[str, Any]
    example: dict[str, Any]
    unit_price: Annotated[float, Field(ge=0)] | None = None
    expected_run_seconds: Annotated[float, Field(gt=0, le=86_400)]
    unit: Annotated[str, Field(min_length=1, max_length=40)] = "request"
    units_field: str | None = None
    units_per_characters: Annotated[int, Field(ge=1)] | None = None


class CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[dict[str, Any]]
    definitions: Any = None


def _field_path(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(entry)"


def entry_from(raw: Mapping[str, Any], *, source: str) -> ModelEntry:
    """One entry, checked; raises :class:`CatalogueError` naming what is wrong."""
    name = raw.get("endpoint_id", "?") if isinstance(raw, Mapping) else "?"
    where = f"{source}: model {name}"
    try:
        fields = EntryFields.model_validate(copy.deepcopy(dict(raw)))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise CatalogueError(f"{where}: {_field_path(first['loc'])}: {first['msg']}") from None
    schema = fields.input_schema
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise CatalogueError(f"{where}: input_schema at {path}: {exc.message}") from None
    if schema.get("type") != "object":
        raise CatalogueError(f"{where}: input_schema: the input must be an object (type: object)")
    properties = schema.get("properties", {})
    if fields.units_field is not None and fields.units_field not in properties:
        raise CatalogueError(f"{where}: units_field: {fields.units_field!r} is not an input field")
    try:
        InputValidator(schema).validate(fields.example)
    except InputInvalid as exc:
        item = exc.items[0]
        raise CatalogueError(
            f"{where}: example: {_field_path(tuple(item['loc']))}: {item['msg']}"
        ) from None
    return ModelEntry(
        endpoint_id=fields.endpoint_id,
        summary=fields.summary,
        output_kind=fields.output_kind,
        input_schema=schema,
        example=fields.example,
        unit_price=fields.unit_price,
        expected_run_seconds=fields.expected_run_seconds,
        unit=fields.unit,
        units_field=fields.units_field,
        units_per_characters=fields.units_per_characters,
        source=source,
    )


def parse_catalogue_text(text: str, *, source: str) -> list[ModelEntry]:
    """Entries of one file's text (YAML or JSON), in the file's order; a duplicate endpoint id
    within one file is an error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise CatalogueError(f"{source}: not YAML or JSON{at}") from None
    try:
        parsed = CatalogueFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise CatalogueError(
            f"{source}: {_field_path(first['loc'])}: {first['msg']} "
            '(expected {"models": [entry, …]})'
        ) from None
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for raw in parsed.models:
        entry = entry_from(raw, source=source)
        if entry.endpoint_id in seen:
            raise CatalogueError(f"{source}: model {entry.endpoint_id} is listed twice")
        seen.add(entry.endpoint_id)
        entries.append(entry)
    return entries


def read_catalogue_file(path: Path) -> list[ModelEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CatalogueError(f"{path}: not UTF-8 text") from None
    return parse_catalogue_text(text, source=str(path))


def builtin_entries() -> list[ModelEntry]:
    """The entries shipped with genqueue, file by file in name order."""
    files = sorted(
        (f for f in resources.files(BUILTIN_PACKAGE).iterdir() if f.name.endswith(".yaml")),
        key=lambda f: f.name,
    )
    entries: list[ModelEntry] = []
    for file in files:
        entries.extend(parse_catalogue_text(file.read_text(encoding="utf-8"), source="built-in"))
    return entries
