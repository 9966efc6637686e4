"""Per-request dependencies: the app's state and a database session."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.state import AppState


async def get_state(request: Request) -> AppState:
    """``async``: FastAPI runs a plain ``def`` dependency on its thread pool, and a hop to a
    worker thread and back for an attribute lookup costs more than the lookup
    (benchmarks/HISTORY.md)."""
    state: AppState = request.app.state.genqueue
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    """One session per request. Routes commit what they change; anything left is rolled back."""
    session = state.sessions()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]
