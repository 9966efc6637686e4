"""Reading a JSON request body ourselves: a size cap (413), and invalid JSON as FastAPI's 422.

NaN and Infinity are not JSON; Python's parser accepts them, so they are refused here, as are
text PostgreSQL cannot store (NUL, lone surrogates) and absurd nesting.
"""

import json
from typing import Annotated, Any

from fastapi import Depends, Request

from api.errors import ApiError, ValidationFailed, invalid
from api.state import StateDep

MAX_DEPTH = 32
"""Deeper JSON is refused: no input of any model nests more than a few levels."""


class _NotJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise invalid(["body"], "Field required", type="missing")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise too_deep(["body"]) from None
    except (ValueError, UnicodeDecodeError) as exc:
        pos = getattr(exc, "pos", 0)
        reason = getattr(exc, "msg", None) or str(exc)
        raise invalid(
            ["body", pos], "JSON decode error", type="json_invalid", input={}, ctx={"error": reason}
        ) from None


def storable_text(text: str) -> bool:
    """PostgreSQL text holds neither NUL nor a lone UTF-16 surrogate (JSON can spell both)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_problem(value: Any) -> tuple[str, list[str | int]] | None:
    """The first value too deeply nested or holding unstorable text: (problem, loc).
    Iterative, so no input can exhaust the interpreter's stack."""
    stack: list[tuple[Any, list[str | int]]] = [(value, ["body"])]
    while stack:
        item, loc = stack.pop()
        if len(loc) > MAX_DEPTH + 1:
            return "depth", loc
        if isinstance(item, str):
            if not storable_text(item):
                return "text", loc
        elif isinstance(item, list):
            stack.extend((v, [*loc, i]) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            for k, v in reversed(list(item.items())):
                if not storable_text(k):
                    return "text", [*loc, "<key>"]
                stack.append((v, [*loc, k]))
    return None


def unstorable_text(loc: list[str | int]) -> ValidationFailed:
    return invalid(
        loc,
        "Text must not contain NUL characters or unpaired surrogates",
        type="string_unstorable",
    )


def too_deep(loc: list[str | int]) -> ValidationFailed:
    return invalid(loc, f"JSON is nested deeper than {MAX_DEPTH} levels", type="too_deep")


def refuse_unstorable(value: Any) -> Any:
    problem = _first_problem(value)
    if problem is None:
        return value
    kind, loc = problem
    if kind == "text":
        raise unstorable_text(loc)
    raise too_deep(loc)


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"Request body is larger than the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, state: StateDep) -> Any:
    return refuse_unstorable(parse_json(await read_body(request, state.settings.max_body_bytes)))


JsonBody = Annotated[Any, Depends(json_body)]
