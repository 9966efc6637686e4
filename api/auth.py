"""API keys: ``Authorization: Bearer <key>`` (relays) or ``Key <key>`` (fal), looked up hashed."""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from api.deps import SessionDep
from api.errors import ApiError
from models.keys import find_key

SCHEMES = ("bearer", "key")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="genqueue", Key realm="genqueue"'}
MISSING = "Missing API key: send 'Authorization: Bearer <key>' or 'Authorization: Key <key>'"
MALFORMED = "Malformed Authorization header: expected 'Bearer <key>' or 'Key <key>'"
INVALID = "Invalid or revoked API key"


@dataclass(frozen=True)
class Caller:
    tenant_id: uuid.UUID
    key_id: uuid.UUID


def presented_key(header: str | None) -> str:
    if not header or not header.strip():
        raise ApiError(401, MISSING, headers=CHALLENGE)
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() not in SCHEMES or not key or " " in key:
        raise ApiError(401, MALFORMED, headers=CHALLENGE)
    return key


def authenticate(request: Request, session: SessionDep) -> Caller:
    key = presented_key(request.headers.get("authorization"))
    row = find_key(session, key)
    if row is None:
        raise ApiError(401, INVALID, headers=CHALLENGE)
    caller = Caller(tenant_id=row.tenant_id, key_id=row.id)
    # Give the connection back before the request leaves this thread. FastAPI runs the route in
    # another thread-pool call; under load every pool thread can be waiting for a connection
    # while the requests holding them wait for a thread (a stall until pool_timeout).
    session.rollback()
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]
