"""A catalogue entry from fal's OpenAPI document of one endpoint.

fal publishes one per model (``https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=<id>``,
and in its platform API's ``GET /models?expand=openapi-3.0``): the queue's routes for that
endpoint, the submit's ``requestBody`` naming the input schema and the result's ``200`` naming
the output schema, both under ``components/schemas`` with the shared pieces they ``$ref``
(``ImageSize``, ``File``, …). ``info.x-fal-metadata`` says the model's ``category``
(``text-to-video``, ``text-to-speech``, …).

The entry takes the input schema with what it references copied into ``$defs`` (a
self-contained Draft 2020-12 schema), OpenAPI 3.0's ``nullable`` read as "or null", an example
made of each field's first ``examples`` value, and an output kind from the category or, failing
that, from the output's file fields. Price and run time are not in the document: the operator
gives them (fal's pricing page and the catalogue's ``duration_estimate``) or the entry is
unpriced with a run time typical of its kind. The entry is checked as any file's is
(:func:`models.catalogue.loader.entry_from`) before it is written anywhere.
"""

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from models.catalogue.entry import OutputKind
from models.catalogue.loader import CatalogueError, entry_from, parse_catalogue_text
from models.catalogue.validation import InputInvalid, InputValidator

REF_PREFIX = "#/components/schemas/"
TYPICAL_RUN_SECONDS = {
    OutputKind.IMAGE: 10.0,
    OutputKind.VIDEO: 300.0,
    OutputKind.AUDIO: 20.0,
    OutputKind.MODEL_3D: 120.0,
    OutputKind.TEXT: 10.0,
    OutputKind.OTHER: 60.0,
}
"""A run time when the operator gives none: the order of magnitude of fal's estimates."""
KIND_BY_CATEGORY_WORD = (
    ("video", OutputKind.VIDEO),
    ("speech", OutputKind.AUDIO),
    ("audio", OutputKind.AUDIO),
    ("music", OutputKind.AUDIO),
    ("3d", OutputKind.MODEL_3D),
    ("image", OutputKind.IMAGE),
    ("text", OutputKind.TEXT),
    ("llm", OutputKind.TEXT),
)
"""``x-fal-metadata.category`` is ``<input>-to-<output>``: its output word decides."""
KIND_BY_OUTPUT_FIELD = (
    ("video", OutputKind.VIDEO),
    ("audio", OutputKind.AUDIO),
    ("model_mesh", OutputKind.MODEL_3D),
    ("images", OutputKind.IMAGE),
    ("image", OutputKind.IMAGE),
)


def _fail(endpoint_id: str, message: str) -> CatalogueError:
    return CatalogueError(f"OpenAPI document for {endpoint_id}: {message}")


def _components(document: Mapping[str, Any]) -> Mapping[str, Any]:
    components = document.get("components", {})
    schemas = components.get("schemas", {}) if isinstance(components, Mapping) else {}
    return schemas if isinstance(schemas, Mapping) else {}


def _json_schema_of(operation: Any) -> Any:
    """The ``application/json`` schema of a request body or a response."""
    if not isinstance(operation, Mapping):
        return None
    content = operation.get("content", {})
    media = content.get("application/json") if isinstance(content, Mapping) else None
    return media.get("schema") if isinstance(media, Mapping) else None


def _path_item(document: Mapping[str, Any], endpoint_id: str, suffix: str = "") -> Any:
    paths = document.get("paths", {})
    if not isinstance(paths, Mapping):
        return None
    return paths.get(f"/{endpoint_id}{suffix}")


def _resolve(schema: Any, components: Mapping[str, Any]) -> Any:
    ref = schema.get("$ref") if isinstance(schema, Mapping) else None
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        return components.get(ref[len(REF_PREFIX) :])
    return schema


def _converted(schema: Any, components: Mapping[str, Any], needed: set[str]) -> Any:
    """``schema`` with component refs pointing into ``$defs`` (their names collected in
    ``needed``) and ``nullable: true`` turned into a ``null`` alternative."""
    if isinstance(schema, list):
        return [_converted(item, components, needed) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
            name = value[len(REF_PREFIX) :]
            needed.add(name)
            out[key] = f"#/$defs/{name}"
        elif key in ("nullable", "example"):
            continue  # OpenAPI 3.0 words: read below / not JSON Schema
        elif key in ("properties", "$defs", "definitions", "patternProperties"):
            out[key] = (
                {k: _converted(v, components, needed) for k, v in value.items()}
                if isinstance(value, Mapping)
                else value
            )
        else:
            out[key] = _converted(value, components, needed)
    if schema.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def input_schema_of(document: Mapping[str, Any], endpoint_id: str) -> dict[str, Any]:
    """The endpoint's input as a self-contained JSON Schema (Draft 2020-12)."""
    item = _path_item(document, endpoint_id)
    post = item.get("post") if isinstance(item, Mapping) else None
    if not isinstance(post, Mapping):
        raise _fail(endpoint_id, f"no POST /{endpoint_id} in its paths (is it this model's?)")
    body = post.get("requestBody")
    components = _components(document)
    raw = _json_schema_of(body)
    ref = raw.get("$ref") if isinstance(raw, Mapping) else None
    root = _resolve(raw, components)
    if not isinstance(root, Mapping):
        raise _fail(endpoint_id, "its submit has no application/json request body schema")
    needed: set[str] = set()
    schema: dict[str, Any] = _converted(root, components, needed)
    defs: dict[str, Any] = {}
    while missing := sorted(needed - set(defs)):
        for name in missing:
            component = components.get(name)
            if not isinstance(component, Mapping):
                raise _fail(endpoint_id, f"it refers to a schema it lacks: {REF_PREFIX}{name}")
            defs[name] = _converted(component, components, needed)
    if defs:
        schema["$defs"] = defs
    if schema.get("type") is None and isinstance(schema.get("properties"), Mapping):
        schema["type"] = "object"
    if isinstance(ref, str):  # fal's titles are generic ("BaseInput"); its component names not
        schema["title"] = ref[len(REF_PREFIX) :]
    return schema


def output_schema_of(document: Mapping[str, Any], endpoint_id: str) -> Mapping[str, Any] | None:
    """The result's schema (``GET /{owner}/{app}/requests/{request_id}``'s 200), if given."""
    paths = document.get("paths", {})
    if not isinstance(paths, Mapping):
        return None
    for path, item in paths.items():
        if not (isinstance(path, str) and path.endswith("/requests/{request_id}")):
            continue
        get = item.get("get") if isinstance(item, Mapping) else None
        responses = get.get("responses", {}) if isinstance(get, Mapping) else {}
        ok = responses.get("200") if isinstance(responses, Mapping) else None
        found = _resolve(_json_schema_of(ok), _components(document))
        if isinstance(found, Mapping):
            return found
    return None


def _kind(document: Mapping[str, Any], endpoint_id: str) -> OutputKind:
    info = document.get("info", {})
    metadata = info.get("x-fal-metadata", {}) if isinstance(info, Mapping) else {}
    category = metadata.get("category") if isinstance(metadata, Mapping) else None
    if isinstance(category, str) and category:
        made = category.lower().rsplit("-to-", 1)[-1]
        for word, kind in KIND_BY_CATEGORY_WORD:
            if word in made:
                return kind
    output = output_schema_of(document, endpoint_id)
    fields = output.get("properties", {}) if isinstance(output, Mapping) else {}
    for name, kind in KIND_BY_OUTPUT_FIELD:
        if name in fields:
            return kind
    return OutputKind.OTHER


def _example(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Each field's first ``examples`` value (or OpenAPI's ``example``)."""
    out: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if not isinstance(prop, Mapping):
            continue
        examples = prop.get("examples")
        if isinstance(examples, list) and examples:
            out[name] = copy.deepcopy(examples[0])
        elif "example" in prop:
            out[name] = copy.deepcopy(prop["example"])
    return out


def _raw_example(document: Mapping[str, Any], endpoint_id: str) -> dict[str, Any]:
    item = _path_item(document, endpoint_id)
    post = item.get("post", {}) if isinstance(item, Mapping) else {}
    root = _resolve(_json_schema_of(post.get("requestBody")), _components(document))
    return _example(root) if isinstance(root, Mapping) else {}


def _checked_example(schema: Mapping[str, Any], example: dict[str, Any]) -> dict[str, Any]:
    """The fields' examples when they make a valid input together, else the required ones'
    (an optional field's example may not fit its own schema); the entry's check names what
    is still wrong."""
    try:
        InputValidator(schema).validate(example)
    except InputInvalid:
        required = schema.get("required", [])
        return {k: v for k, v in example.items() if isinstance(required, list) and k in required}
    return example


def _summary(document: Mapping[str, Any], endpoint_id: str) -> str:
    info = document.get("info", {})
    metadata = info.get("x-fal-metadata", {}) if isinstance(info, Mapping) else {}
    category = metadata.get("category") if isinstance(metadata, Mapping) else None
    words = f"{endpoint_id} ({category})" if isinstance(category, str) else endpoint_id
    return f"Imported from fal's OpenAPI: {words}"[:200]


def entry_from_openapi(
    document: Any,
    endpoint_id: str,
    *,
    summary: str | None = None,
    output_kind: OutputKind | None = None,
    unit_price: float | None = None,
    expected_run_seconds: float | None = None,
) -> dict[str, Any]:
    """The catalogue entry (as it is written in a file) for ``endpoint_id`` from its OpenAPI
    document, checked like any entry. Raises :class:`CatalogueError` naming the problem."""
    endpoint_id = endpoint_id.strip("/")
    if not isinstance(document, Mapping) or not isinstance(document.get("paths"), Mapping):
        raise _fail(endpoint_id, "not an OpenAPI document (no paths)")
    schema = input_schema_of(document, endpoint_id)
    kind = output_kind or _kind(document, endpoint_id)
    entry: dict[str, Any] = {
        "endpoint_id": endpoint_id,
        "summary": summary or _summary(document, endpoint_id),
        "output_kind": str(kind),
        "unit_price": unit_price,
        "expected_run_seconds": expected_run_seconds or TYPICAL_RUN_SECONDS[kind],
        "input_schema": schema,
        "example": _checked_example(schema, _raw_example(document, endpoint_id)),
    }
    if unit_price is None:
        del entry["unit_price"]
    entry_from(entry, source=f"OpenAPI document for {endpoint_id}")
    return entry


def entry_yaml(entry: Mapping[str, Any]) -> str:
    """``{"models": [entry]}`` as YAML, a catalogue file by itself."""
    return yaml.safe_dump({"models": [dict(entry)]}, sort_keys=False, allow_unicode=True)


def appended(existing: str, entry: Mapping[str, Any], *, source: str) -> str:
    """The text of an operator's models file with ``entry`` added as its last model, the rest
    of the file (comments too) kept as written. Refused when the file is not a catalogue, when
    it already lists the model, or when its layout keeps the entry from going at the end of
    its ``models`` list (then the printed YAML can be pasted by hand)."""
    if not existing.strip():
        return entry_yaml(entry)
    before = parse_catalogue_text(existing, source=source)
    endpoint_id = entry["endpoint_id"]
    if any(e.endpoint_id == endpoint_id for e in before):
        raise CatalogueError(f"{source}: already lists model {endpoint_id}")
    if re.search(r"^models:\s*\[\s*\]\s*$", existing, re.MULTILINE):
        existing = re.sub(r"^models:\s*\[\s*\]\s*$", "models:", existing, flags=re.MULTILINE)
    item = yaml.safe_dump([dict(entry)], sort_keys=False, allow_unicode=True)
    indent = _list_indent(existing)
    block = "".join(indent + line if line.strip() else line for line in item.splitlines(True))
    text = existing if existing.endswith("\n") else existing + "\n"
    text += block
    after = parse_catalogue_text(text, source=source)
    if [e.endpoint_id for e in after] != [*(e.endpoint_id for e in before), endpoint_id]:
        raise CatalogueError(
            f"{source}: its models list is not the end of the file; add the entry by hand "
            "(print it without --into)"
        )
    return text


def _list_indent(text: str) -> str:
    """How the file indents its ``models`` items (``  - endpoint_id: …``)."""
    found = re.search(r"^models:\s*\n(?:\s*#.*\n|\s*\n)*( *)- ", text, re.MULTILINE)
    return found.group(1) if found else ""


def load_document(text: str, *, source: str) -> Any:
    """An OpenAPI document's text (JSON, or YAML): its data, or :class:`CatalogueError`."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise CatalogueError(f"{source}: neither JSON nor YAML") from None
