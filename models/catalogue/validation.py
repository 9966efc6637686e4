"""An input checked against its model's JSON Schema, refused the way FastAPI refuses a body.

The validator is ``jsonschema`` (Draft 2020-12, the dialect of OpenAPI 3.1 and of fal's model
schemas). Its errors are turned into FastAPI/pydantic items (``type``, ``loc``, ``msg``, ``input``
and ``ctx``) with pydantic's own types and messages, so a client sees the same 422 for a model
whatever its schema came from: ``{"loc": ["body", "guidance_scale"], "msg": "Input should be less
than or equal to 20", "type": "less_than_equal", "ctx": {"le": 20}, "input": 21}``. As pydantic
does, one field gets one item (its first failing rule).

A valid input is stored as it will be sent: defaults filled in, ``null`` for an optional field
dropped, whole numbers in integer fields as integers (``3.0`` → ``3``, JSON Schema counts them
as integers) and integers in number fields as floats. A property marked
``x-genqueue-store-as: string`` takes a whole number as its decimal string (the Kontext
``safety_tolerance``: a string enum that relays send as an integer).
"""

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

STORE_AS = "x-genqueue-store-as"
BLANK_PATTERN = r"\S"
"""The pattern that says "not only white space": refused as pydantic's ``string_blank``."""

TYPE_ERRORS = {
    "string": ("string_type", "Input should be a valid string"),
    "integer": ("int_type", "Input should be a valid integer"),
    "number": ("float_type", "Input should be a valid number"),
    "boolean": ("bool_type", "Input should be a valid boolean"),
    "array": ("list_type", "Input should be a valid list"),
    "object": ("dict_type", "Input should be a valid dictionary"),
    "null": ("none_required", "Input should be None"),
}
PRECEDENCE = (
    "type",
    "const",
    "enum",
    "anyOf",
    "oneOf",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "pattern",
    "minItems",
    "maxItems",
)
"""Which rule a field's one item names when several fail (pydantic checks type, then bounds)."""


class InputInvalid(Exception):
    """The input does not match the schema; ``items`` are FastAPI-style, one per bad field."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        super().__init__(items)
        self.items = items


def _item(
    loc: Sequence[str | int], type: str, msg: str, input: Any, ctx: dict[str, Any] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {"type": type, "loc": list(loc), "msg": msg, "input": input}
    if ctx is not None:
        item["ctx"] = ctx
    return item


def _expected(values: Iterable[Any]) -> str:
    """pydantic's wording of allowed values: ``'jpeg' or 'png'``."""
    shown = [repr(v) for v in values if v is not None]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _literal(loc: list[str | int], values: Iterable[Any], instance: Any) -> dict[str, Any]:
    expected = _expected(values)
    return _item(
        loc, "literal_error", f"Input should be {expected}", instance, {"expected": expected}
    )


def _enum_branch(branches: Sequence[Any]) -> list[Any] | None:
    for branch in branches:
        if isinstance(branch, Mapping) and isinstance(branch.get("enum"), list):
            return list(branch["enum"])
    return None


Items = list[dict[str, Any]]
BOUNDS = {
    "minimum": ("greater_than_equal", "greater than or equal to", "ge"),
    "maximum": ("less_than_equal", "less than or equal to", "le"),
    "exclusiveMinimum": ("greater_than", "greater than", "gt"),
    "exclusiveMaximum": ("less_than", "less than", "lt"),
    "multipleOf": ("multiple_of", "a multiple of", "multiple_of"),
}


def _object_items(error: ValidationError, loc: list[str | int]) -> Items:
    """``required`` and ``additionalProperties``: one item per field named."""
    rule, instance = error.validator_value, error.instance
    if not isinstance(instance, Mapping):
        return []
    if error.validator == "required":
        missing = [name for name in rule if name not in instance]
        return [_item([*loc, name], "missing", "Field required", instance) for name in missing]
    if rule is not False:
        return [_item(loc, "value_error", error.message, instance)]
    known = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
    return [
        _item([*loc, name], "extra_forbidden", "Extra inputs are not permitted", value)
        for name, value in instance.items()
        if name not in known
    ]


def _type_item(error: ValidationError, loc: list[str | int], root_title: str) -> Items:
    """A wrong type; ``root_title``: the model's name when this is the whole input."""
    rule, instance = error.validator_value, error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if isinstance(schema.get("enum"), list):
        return [_literal(loc, schema["enum"], instance)]  # pydantic's Literal checks no type
    names = [rule] if isinstance(rule, str) else [t for t in rule if t != "null"] or ["null"]
    if names[0] == "object" and root_title:
        msg = f"Input should be a valid dictionary or instance of {root_title}"
        return [_item(loc, "model_type", msg, instance, {"class_name": root_title})]
    type_, msg = TYPE_ERRORS.get(names[0], ("type_error", error.message))
    return [_item(loc, type_, msg, instance)]


def _choice_item(error: ValidationError, loc: list[str | int]) -> Items:
    """``enum``, ``const``, and ``anyOf``/``oneOf`` with an enum branch: pydantic's Literal."""
    rule, instance = error.validator_value, error.instance
    if error.validator == "enum":
        return [_literal(loc, rule, instance)]
    if error.validator == "const":
        return [_literal(loc, [rule], instance)]
    values = _enum_branch(rule)
    if values is None:
        return [_item(loc, "value_error", error.message, instance)]
    return [_literal(loc, values, instance)]


def _bound_item(error: ValidationError, loc: list[str | int]) -> Items:
    rule, instance = error.validator_value, error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    type_, words, key = BOUNDS[str(error.validator)]
    # pydantic states a float field's bounds as floats (in ctx; the message as declared)
    bound = float(rule) if "number" in _types(schema) and isinstance(rule, int) else rule
    return [_item(loc, type_, f"Input should be {words} {rule}", instance, {key: bound})]


def _string_item(error: ValidationError, loc: list[str | int]) -> Items:
    rule, instance = error.validator_value, error.instance
    if error.validator == "minLength":
        msg = f"String should have at least {_plural(rule, 'character')}"
        return [_item(loc, "string_too_short", msg, instance, {"min_length": rule})]
    if error.validator == "maxLength":
        msg = f"String should have at most {_plural(rule, 'character')}"
        return [_item(loc, "string_too_long", msg, instance, {"max_length": rule})]
    if rule == BLANK_PATTERN:
        msg = "String should have at least one character that is not white space"
        return [_item(loc, "string_blank", msg, instance)]
    msg = f"String should match pattern '{rule}'"
    return [_item(loc, "string_pattern_mismatch", msg, instance, {"pattern": rule})]


def _list_item(error: ValidationError, loc: list[str | int]) -> Items:
    rule, instance = error.validator_value, error.instance
    size = len(instance)
    short = error.validator == "minItems"
    msg = (
        f"List should have {'at least' if short else 'at most'} {_plural(rule, 'item')} "
        f"after validation, not {size}"
    )
    ctx = {"field_type": "List", "min_length" if short else "max_length": rule}
    type_ = "too_short" if short else "too_long"
    return [_item(loc, type_, msg, instance, ctx | {"actual_length": size})]


def _items_for(error: ValidationError, loc: list[str | int], root_title: str) -> Items:
    """The FastAPI items one jsonschema error stands for."""
    keyword = error.validator
    if keyword in ("required", "additionalProperties"):
        return _object_items(error, loc)
    if keyword == "type":
        return _type_item(error, loc, root_title)
    if keyword in ("enum", "const", "anyOf", "oneOf"):
        return _choice_item(error, loc)
    if keyword in BOUNDS:
        return _bound_item(error, loc)
    if keyword in ("minLength", "maxLength", "pattern"):
        return _string_item(error, loc)
    if keyword in ("minItems", "maxItems"):
        return _list_item(error, loc)
    return [_item(loc, "value_error", error.message, error.instance)]


def _whole(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _store_as_string(schema: Mapping[str, Any], payload: dict[str, Any]) -> None:
    for name, prop in schema.get("properties", {}).items():
        if isinstance(prop, Mapping) and prop.get(STORE_AS) == "string" and name in payload:
            value = _whole(payload[name])
            if isinstance(value, int) and not isinstance(value, bool):
                payload[name] = str(value)


def _types(schema: Mapping[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    return set(declared) if isinstance(declared, list) else set()


def _normalised(schema: Mapping[str, Any], value: Any) -> Any:
    """Numbers as their schema types them, objects with defaults and without ``null``s,
    recursively through ``properties`` and ``items``."""
    types = _types(schema)
    if isinstance(value, bool):
        return value
    if "integer" in types and isinstance(value, float):
        return _whole(value)
    if "number" in types and "integer" not in types and isinstance(value, int):
        return float(value)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_normalised(schema["items"], v) for v in value]
    if isinstance(value, dict) and isinstance(schema.get("properties"), Mapping):
        return _with_defaults(schema, value)
    return value


def _with_defaults(schema: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, prop in properties.items():
        if name in payload and payload[name] is not None:
            out[name] = _normalised(prop, payload[name])
        elif isinstance(prop, Mapping) and prop.get("default") is not None:
            out[name] = _normalised(prop, copy.deepcopy(prop["default"]))
    for name, value in payload.items():  # allowed by additionalProperties/patternProperties
        if name not in properties and value is not None:
            out[name] = value
    return out


class InputValidator:
    """One model's input schema, compiled once."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._validator = Draft202012Validator(schema)
        self._title = str(schema.get("title") or "")
        order = list(schema.get("properties", {}))
        self._order = {name: i for i, name in enumerate(order)}

    def validate(self, payload: Any, *, loc: Sequence[str | int] = ()) -> dict[str, Any]:
        """The input as it will be stored and sent; raises :class:`InputInvalid`."""
        given = payload
        if isinstance(payload, dict):
            payload = dict(payload)
            _store_as_string(self.schema, payload)
        items = self.errors(payload, loc=loc)
        if items:
            for item in items:  # a missing field's item shows the input as it was sent
                if item["input"] is payload:
                    item["input"] = given
            raise InputInvalid(items)
        if not isinstance(payload, dict):  # a schema that is not an object schema
            return payload  # type: ignore[no-any-return]
        return _with_defaults(self.schema, payload)

    def errors(self, payload: Any, *, loc: Sequence[str | int] = ()) -> list[dict[str, Any]]:
        """One item per bad field, in the schema's order of properties."""
        best: dict[tuple[str | int, ...], tuple[int, list[dict[str, Any]]]] = {}
        for error in self._validator.iter_errors(payload):
            where = [*loc, *error.absolute_path]
            rank = PRECEDENCE.index(error.validator) if error.validator in PRECEDENCE else 99
            root_title = "" if error.absolute_path else self._title
            for item in _items_for(error, where, root_title):
                key = tuple(item["loc"])
                if key not in best or rank < best[key][0]:
                    best[key] = (rank, [item])
        items = [item for _, found in best.values() for item in found]
        depth = len(loc)

        def position(item: dict[str, Any]) -> int:
            field = item["loc"][depth] if len(item["loc"]) > depth else None
            return self._order.get(field, len(self._order)) if isinstance(field, str) else -1

        return sorted(items, key=position)
