"""OpenAPI: the documented error answers, the model input schemas, and the security schemes.

Bodies of the model routes are read by hand (size cap, strict JSON), so their schemas are added
to the components here and referenced from each route's ``requestBody``.
"""

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.errors import DB_UNAVAILABLE
from api.fal.schemas import SEED_SUBMIT_ANSWER
from api.schemas import ErrorMessage, GenerationCreate, ValidationErrorResponse
from models.catalogue import Catalogue

REF = "#/components/schemas/{model}"
BODY_MODELS: tuple[type[BaseModel], ...] = (GenerationCreate,)
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "a genqueue API key"},
    "falKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "'Key <genqueue API key>', as fal clients send it",
    },
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"falKey": []}]

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing, malformed, wrong or revoked API key",
    402: "`budget_exceeded`: the estimate would take the tenant past its monthly budget",
    404: "Not found (or another tenant's)",
    409: "Conflict",
    413: "Request body too large",
    422: "Invalid input: `detail` names each field",
    429: "Too many at once, or over the tenant's create rate limit: `detail` says which; "
    "`Retry-After` when to try again",
    503: DB_UNAVAILABLE,
}


def errors(*codes: int, described: dict[int, str] | None = None) -> dict[int | str, Any]:
    """``responses=`` entries for error codes (422 with the validation-list schema)."""
    text = {**_DESCRIPTIONS, **(described or {})}
    return {
        code: {
            "model": ValidationErrorResponse if code == 422 else ErrorMessage,
            "description": text.get(code, "Error"),
        }
        for code in codes
    }


def json_request_body(schema_name: str, example: dict[str, Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model=schema_name)},
                    "example": example,
                }
            },
        }
    }


def _add_seed_examples(schema: dict[str, Any], catalogue: Catalogue) -> None:
    """FastAPI drops ``None`` from examples (the seed's ``"logs": null``): add them afterwards."""
    schema["components"]["schemas"]["FalSubmitResponse"]["example"] = SEED_SUBMIT_ANSWER
    for path, item in schema["paths"].items():
        if path.lstrip("/") in catalogue:
            ok = item["post"]["responses"]["200"]["content"]["application/json"]
            ok["example"] = SEED_SUBMIT_ANSWER


def _create_variants(create: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """``GenerationCreate`` as the server checks it: ``input`` follows the schema of ``model``,
    so the document says so, one variant per input schema (``anyOf``; the models differ)."""
    groups: dict[str, list[str]] = {}
    for spec in catalogue.values():
        groups.setdefault(catalogue.schema_name(spec.endpoint_id), []).append(spec.endpoint_id)
    properties = create["properties"]
    variants = [
        {
            "type": "object",
            "properties": {
                **properties,
                "model": {**properties["model"], "enum": endpoint_ids},
                "input": {"$ref": REF.format(model=name)},
            },
            "required": create["required"],
            "additionalProperties": False,
        }
        for name, endpoint_ids in groups.items()
    ]
    outer = {
        k: v
        for k, v in create.items()
        if k not in ("properties", "required", "type", "additionalProperties")
    }
    return {**outer, "anyOf": variants}


def input_schemas(catalogue: Catalogue) -> dict[str, Any]:
    """Each model's input schema once, by its name (``ModelEntry.schema_name``)."""
    return {
        catalogue.schema_name(spec.endpoint_id): copy.deepcopy(dict(spec.input_schema))
        for spec in catalogue.values()
    }


def install_openapi(app: FastAPI, catalogue: Catalogue) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _, defs = models_json_schema([(m, "validation") for m in BODY_MODELS], ref_template=REF)
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {}).update(defs.get("$defs", {}))
        schemas = components["schemas"]
        schemas.update(input_schemas(catalogue))
        schemas["GenerationCreate"] = _create_variants(schemas["GenerationCreate"], catalogue)
        components["securitySchemes"] = SECURITY_SCHEMES
        _add_seed_examples(schema, catalogue)
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
