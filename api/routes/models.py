"""``GET /v1/models`` and ``GET /v1/models/{endpoint_id}``: the model catalogue, as clients see it.

Each entry carries its input's JSON Schema (Draft 2020-12: types, enums, bounds, defaults and
descriptions, enough to build a form from) and an example input, its price per unit, its
expected run time and what kind of output it makes.
"""

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.errors import ApiError
from api.openapi import SECURITY, errors
from api.state import CallerDep, StateDep
from models.catalogue import OutputKind

router = APIRouter(prefix="/v1", tags=["models"])


class ModelPublic(BaseModel):
    endpoint_id: str = Field(description="POST /{endpoint_id}, or model of POST /v1/generations")
    summary: str
    output_kind: OutputKind
    unit_price: float | None = Field(description="USD a unit (null: unpriced)")
    unit: str = Field(description="what a unit is: image, second (of video), 1000 characters…")
    expected_run_seconds: float = Field(description="how long a job usually runs upstream")
    input_schema: dict[str, Any] = Field(description="JSON Schema (2020-12) of the input")
    example: dict[str, Any] = Field(description="an input that passes the schema")
    source: Literal["built-in", "operator"] = Field(
        description="built into genqueue, or added by the operator (GENQUEUE_MODELS_FILE)"
    )


class ModelList(BaseModel):
    items: list[ModelPublic]


@router.get(
    "/models",
    response_model=ModelList,
    summary="The models this server accepts",
    responses=errors(401, 503),
    openapi_extra={"security": SECURITY},
)
def list_models(_: CallerDep, state: StateDep) -> ModelList:
    return ModelList(
        items=[ModelPublic.model_validate(e.public()) for e in state.catalogue.values()]
    )


@router.get(
    "/models/{endpoint_id:path}",
    response_model=ModelPublic,
    summary="One model: its input schema, example, price and expected run time",
    responses=errors(401, 404, 503),
    openapi_extra={"security": SECURITY},
)
def get_model(_: CallerDep, state: StateDep, endpoint_id: str) -> ModelPublic:
    entry = state.catalogue.get(endpoint_id.strip("/"))
    if entry is None:
        raise ApiError(404, f"Model '{endpoint_id}' is not in the catalogue (GET /v1/models)")
    return ModelPublic.model_validate(entry.public())
