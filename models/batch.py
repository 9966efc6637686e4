"""Writing a batch: all of it in one transaction, or, when the database refuses that, each item
in a transaction of its own, so a single bad item never holds its batch back.

The API's intake writes its groups of new generations this way, and the worker its poll and
submit outcomes.
"""

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
    write: Callable[[Session, Sequence[T]], Sequence[R]],
    *,
    refused: Callable[[T, Exception], R],
    what: str,
) -> list[R]:
    """``write(session, items)`` in one transaction (without autoflush: the ORM inserts its
    rows together at the commit), answering one outcome per item, in order. If that fails for
    any reason but an unreachable database (which is raised), each item is written alone
    (``write(session, [item])``); an item whose own transaction fails is handed to
    ``refused``, whose answer stands for it."""
    try:
        with sessions.begin() as session, session.no_autoflush:
            return _outcomes(items, write(session, items))
    except UNREACHABLE:
        raise
    except Exception as exc:
        log.warning("writing a %s group failed (%s); writing each alone", what, exc)
    return [_alone(sessions, item, write, refused, what) for item in items]


def each(write: Callable[[Session, T], R]) -> Callable[[Session, Sequence[T]], list[R]]:
    """A writer of one item as a writer of many: one after the other, in the same session."""

    def write_each(session: Session, items: Sequence[T]) -> list[R]:
        return [write(session, item) for item in items]

    return write_each


def _alone(
    sessions: sessionmaker[Session],
    item: T,
    write: Callable[[Session, Sequence[T]], Sequence[R]],
    refused: Callable[[T, Exception], R],
    what: str,
) -> R:
    try:
        with sessions.begin() as session:
            [outcome] = _outcomes([item], write(session, [item]))
            return outcome
    except UNREACHABLE:
        raise
    except Exception as exc:
        log.exception("writing a %s alone failed", what)
        return refused(item, exc)


def _outcomes(items: Sequence[T], outcomes: Sequence[R]) -> list[R]:
    if len(outcomes) != len(items):
        raise RuntimeError(f"{len(outcomes)} outcomes written for {len(items)} items")
    return list(outcomes)
