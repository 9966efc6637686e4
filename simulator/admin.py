"""``/_sim`` — the JSON admin API that drives a simulator from another process."""

import json
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from simulator.core import Simulator


async def _json_object(request: Request) -> dict[str, Any] | JSONResponse:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        return JSONResponse({"detail": "body must be JSON"}, status_code=400)
    if not isinstance(data, dict):
        return JSONResponse({"detail": "body must be a JSON object"}, status_code=400)
    return data


def admin_app(sim: Simulator) -> Starlette:  # noqa: C901 (ten one-branch handlers, counted here)
    """The admin routes bound to ``sim``."""

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def get_config(_: Request) -> Response:
        return JSONResponse(sim.config.public_dict())

    async def set_config(request: Request) -> Response:
        fields = await _json_object(request)
        if isinstance(fields, JSONResponse):
            return fields
        try:
            config = sim.configure(**fields)
        except (TypeError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse(config.public_dict())

    async def list_faults(_: Request) -> Response:
        return JSONResponse(sim.faults())

    async def add_fault(request: Request) -> Response:
        fields = await _json_object(request)
        if isinstance(fields, JSONResponse):
            return fields
        try:
            rule = sim.add_fault(fields)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False)
            return JSONResponse({"detail": json.loads(json.dumps(errors, default=str))}, 422)
        return JSONResponse(rule.model_dump(mode="json"), status_code=201)

    async def clear_faults(_: Request) -> Response:
        sim.clear_faults()
        return JSONResponse({"ok": True})

    async def reset(_: Request) -> Response:
        sim.reset()
        return JSONResponse({"ok": True})

    async def request_info(request: Request) -> Response:
        info = sim.request_info(request.path_params["request_id"])
        if info is None:
            return JSONResponse({"detail": "Request not found"}, status_code=404)
        return JSONResponse(info)

    async def submits(_: Request) -> Response:
        return JSONResponse(sim.submits())

    async def stats(_: Request) -> Response:
        return JSONResponse(sim.stats())

    async def rotate_key(_: Request) -> Response:
        return JSONResponse({"kid": sim.rotate_webhook_key()})

    routes = [
        Route("/_sim/health", health, methods=["GET"]),
        Route("/_sim/config", get_config, methods=["GET"]),
        Route("/_sim/config", set_config, methods=["POST"]),
        Route("/_sim/faults", list_faults, methods=["GET"]),
        Route("/_sim/faults", add_fault, methods=["POST"]),
        Route("/_sim/faults", clear_faults, methods=["DELETE"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/requests/{request_id}", request_info, methods=["GET"]),
        Route("/_sim/submits", submits, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/webhook-key/rotate", rotate_key, methods=["POST"]),
    ]
    return Starlette(routes=routes)
