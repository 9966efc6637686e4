"""API keys: ``Authorization: Bearer <key>`` (relays) or ``Key <key>`` (fal), looked up hashed."""

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep
from api.errors import ApiError
from api.keycache import Caller
from api.state import AppState
from models.keys import find_key

__all__ = ["Caller", "CallerDep", "authenticate", "presented_key"]

SCHEMES = ("bearer", "key")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="genqueue", Key realm="genqueue"'}
MISSING = "Missing API key: send 'Authorization: Bearer <key>' or 'Authorization: Key <key>'"
MALFORMED = "Malformed Authorization header: expected 'Bearer <key>' or 'Key <key>'"
INVALID = "Invalid or revoked API key"


def presented_key(header: str | None) -> str:
    if not header or not header.strip():
        raise ApiError(401, MISSING, headers=CHALLENGE)
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() not in SCHEMES or not key or " " in key:
        raise ApiError(401, MALFORMED, headers=CHALLENGE)
    return key


async def authenticate(request: Request, state: StateDep) -> Caller:
    """The caller of a request, from the key cache or, on a miss, the database (in a worker
    thread: the event loop never waits on a lookup)."""
    key = presented_key(request.headers.get("authorization"))
    caller = state.keys.get(key)
    if caller is None:
        caller = await run_in_threadpool(_lookup, state, key)
        state.keys.put(key, caller)
    return caller


def _lookup(state: AppState, key: str) -> Caller:
    with state.sessions() as session:
        row = find_key(session, key)
        if row is None:
            raise ApiError(401, INVALID, headers=CHALLENGE)
        return Caller(tenant_id=row.tenant_id, key_id=row.id)


CallerDep = Annotated[Caller, Depends(authenticate)]
