"""Recording a batch's outcomes: one transaction for all, or, when the database refuses one
row, one transaction each, so a single bad row never holds its batch back."""

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from models.db import UNREACHABLE

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


def write_together(
    sessions: sessionmaker[Session],
    items: Sequence[T],
    write: Callable[[Session, T], R],
    *,
    refused: Callable[[T, Exception], R],
    what: str,
) -> list[R]:
    """``write`` every item in one transaction (without autoflush: the ORM inserts its rows
    together at the commit). If that fails for any reason but an unreachable database (which
    is raised), each item is written alone; an item whose own transaction fails is handed to
    ``refused``, whose answer stands for it."""
    try:
        with sessions.begin() as session, session.no_autoflush:
            return [write(session, item) for item in items]
    except UNREACHABLE:
        raise
    except Exception as exc:
        log.warning("a %s write-back failed (%s); writing each alone", what, exc)
    return [_alone(sessions, item, write, refused, what) for item in items]


def _alone(
    sessions: sessionmaker[Session],
    item: T,
    write: Callable[[Session, T], R],
    refused: Callable[[T, Exception], R],
    what: str,
) -> R:
    try:
        with sessions.begin() as session:
            return write(session, item)
    except UNREACHABLE:
        raise
    except Exception as exc:
        log.exception("recording a %s failed", what)
        return refused(item, exc)
