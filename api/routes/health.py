"""``/healthz`` (the process answers) and ``/readyz`` (the database and the broker answer)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.schemas import Health
from api.state import AppState, StateDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


def database_answers(state: AppState) -> bool:
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


@router.get(
    "/readyz",
    response_model=Health,
    summary="The database and the broker answer",
    responses={503: {"model": Health, "description": "Something does not answer"}},
)
def readyz(state: StateDep) -> JSONResponse:
    checks = {"database": database_answers(state), "broker": state.publisher.ping()}
    ready = all(checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
