"""OpenAPI: every schema and the seed's example are published, and property-based fuzzing of
``/openapi.json`` (schemathesis) finds no 5xx and no answer that breaks the documented schema."""

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.fal.registry import SEED_EXAMPLE
from api.fal.schemas import SEED_SUBMIT_ANSWER
from api.listing import CURSOR_PATTERN
from api.submission import IDEMPOTENCY_KEY_PATTERN
from models.settings import Settings
from tests.api.seed import load_seed
from tests.api.support import RecordingPublisher, auth

EXAMPLES = int(os.environ.get("GENQUEUE_FUZZ_EXAMPLES", "25"))
SEED_PATH = "/fal-ai/flux-pro/kontext/text-to-image"


def test_openapi_carries_every_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in (
        "KontextTextToImageInput",
        "KontextEditInput",
        "KontextMultiInput",
        "GenerationCreate",
        "GenerationDetail",
        "GenerationPage",
        "GenerationEventPublic",
        "FalSubmitResponse",
        "FalStatusResponse",
        "FalCancelResponse",
        "ValidationErrorResponse",
        "ErrorMessage",
    ):
        assert name in schemas, name
    inputs = schemas["KontextTextToImageInput"]
    assert inputs["additionalProperties"] is False
    assert inputs["required"] == ["prompt"]
    assert inputs["properties"]["guidance_scale"]["maximum"] == 20
    assert inputs["properties"]["aspect_ratio"]["default"] == "1:1"
    assert set(spec["components"]["securitySchemes"]) == {"bearer", "falKey"}
    for path in (
        "/v1/generations",
        "/v1/generations/{generation_id}",
        "/healthz",
        "/readyz",
        "/{owner}/{app}/requests/{request_id}/status",
        "/{owner}/{app}/requests/{request_id}/status/stream",
    ):
        assert path in spec["paths"], path


def test_openapi_carries_the_seed_example(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    submit = spec["paths"][SEED_PATH]["post"]
    body = submit["requestBody"]["content"]["application/json"]
    assert body["example"] == SEED_EXAMPLE
    assert body["schema"] == {"$ref": "#/components/schemas/KontextTextToImageInput"}
    assert spec["components"]["schemas"]["FalSubmitResponse"]["example"] == SEED_SUBMIT_ANSWER
    answer = submit["responses"]["200"]["content"]["application/json"]
    assert answer["example"] == SEED_SUBMIT_ANSWER
    seed = load_seed()
    assert seed.request_example == SEED_EXAMPLE
    assert seed.response_example == SEED_SUBMIT_ANSWER


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [p for p in operation["parameters"] if p["name"] == name]
    schema: dict[str, Any] = found["schema"]
    return schema


def test_openapi_declares_what_the_server_enforces(client: TestClient) -> None:
    """Issue 19 item 9: each of these was enforced by the server but missing from the document
    (the fuzzing below checks that the two agree)."""
    spec = client.get("/openapi.json").json()
    submit = spec["paths"][SEED_PATH]["post"]
    assert _parameter(submit, "fal_webhook")["pattern"] == "^https?://"
    assert _parameter(submit, "Idempotency-Key")["pattern"] == IDEMPOTENCY_KEY_PATTERN
    listing = spec["paths"]["/v1/generations"]["get"]
    assert _parameter(listing, "cursor")["anyOf"][0]["pattern"] == CURSOR_PATTERN
    result = spec["paths"]["/{owner}/{app}/requests/{request_id}"]["get"]["responses"]
    assert {"400", "499"} <= set(result)
    stream = spec["paths"]["/{owner}/{app}/requests/{request_id}/status/stream"]["get"]
    assert "429" in stream["responses"]
    create = spec["components"]["schemas"]["GenerationCreate"]
    assert {v["properties"]["input"]["$ref"].rsplit("/", 1)[1] for v in create["anyOf"]} == {
        "KontextTextToImageInput",
        "KontextEditInput",
        "KontextMultiInput",
        "FluxSchnellInput",
        "KlingTextToVideoInput",
        "KokoroAmericanEnglishInput",
    }


def test_docs_page_is_served(client: TestClient) -> None:
    assert "swagger" in client.get("/docs").text.lower()


def _operations() -> list[tuple[str, str, GenerationMode, bool]]:
    """Every documented operation, from an app that connects nowhere, in both generation modes
    (negative only where there is an input to get wrong), and whether it takes a JSON body."""
    spec = create_app(
        Settings(database_url="postgresql://127.0.0.1:1/x"), publisher=RecordingPublisher()
    ).openapi()
    cases = []
    for path, item in spec["paths"].items():
        if path.endswith("/status/stream"):
            continue  # streams until COMPLETED: tested directly
        for method, operation in item.items():
            has_body = "requestBody" in operation
            cases.append((method, path, GenerationMode.POSITIVE, has_body))
            if operation.get("parameters") or has_body:
                cases.append((method, path, GenerationMode.NEGATIVE, has_body))
    return cases


WEBHOOK_FIELDS = (["query", "fal_webhook"], ["body", "webhook_url"])


def documented_input_is_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """Input the document allows is not refused: the server is no stricter than its schema.
    The one allowed exception is a webhook URL, which must also pass the destination policy
    (checked at create; no schema can say which hosts it refuses)."""
    if response.status_code == 422:
        locs = [item.get("loc") for item in response.json().get("detail", [])]
        if locs and all(loc in WEBHOOK_FIELDS for loc in locs):
            return None
    return positive_data_acceptance(ctx, response, case)


CHECKS = [
    not_a_server_error,
    documented_input_is_accepted,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def no_server_error_but_the_run_timeout(ctx: Any, response: Any, case: Any) -> bool | None:
    """/run waits for a worker, and none runs here: its documented 504 (the job goes on) is
    the one 5xx allowed."""
    if response.status_code >= 500:
        assert response.status_code == 504, f"server error {response.status_code}"
        assert response.json()["error_type"] == "run_timeout", response.text
    return None


# Bodies are validated strictly, so any body that breaks its schema must be refused. Query
# strings keep FastAPI's usual leniency (the last of repeated values; numbers as timestamps),
# which this check would report, so it runs on body operations only.
BODY_CHECKS = [*CHECKS, negative_data_rejection]


@pytest.fixture(scope="module")
def fuzzed_app(api_settings: Settings, recorder: RecordingPublisher) -> Iterator[FastAPI]:
    """The API under fuzzing. No worker runs: /run answers its 504 at once rather than after
    waiting for a job that never moves (valid input reaches it on every example)."""
    app = create_app(api_settings.model_copy(update={"run_timeout": 0.01}), publisher=recorder)
    yield app
    app.state.genqueue.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: FastAPI) -> Any:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    # PostgreSQL text cannot hold NUL, and the server says so (422); the document does not.
    schema.config.generation.update(allow_x00=False)
    return schema


@pytest.mark.parametrize(("method", "path", "mode", "has_body"), _operations())
def test_fuzzing_finds_no_server_error_and_no_schema_violation(
    api_schema: Any, key: str, method: str, path: str, mode: GenerationMode, has_body: bool
) -> None:
    operation = api_schema[path][method.upper()]
    headers = auth(key, "Bearer")
    checks = BODY_CHECKS if has_body else CHECKS
    if path.startswith("/run/"):
        checks = [c for c in checks if c is not not_a_server_error]
        checks.append(no_server_error_but_the_run_timeout)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples every run: a failure reproduces
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    fuzz()
