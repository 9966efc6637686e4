"""The transition table, and the compare-and-set that enforces it on a real database."""

import itertools
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.generations import CancelRequestOutcome, request_cancel
from models.keys import create_key
from models.state import transition
from models.status import ALLOWED_FROM, TERMINAL, GenerationStatus
from models.tables import GENERATIONS, Generation, GenerationEvent
from tests.support.generations import can_transition, create_generation

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

# The whole table, written out: a change to the state machine must change this test.
EXPECTED = {
    (GenerationStatus.PENDING, GenerationStatus.SUBMITTING),
    (GenerationStatus.SUBMITTING, GenerationStatus.PENDING),
    (GenerationStatus.SUBMITTING, GenerationStatus.QUEUED),
    (GenerationStatus.QUEUED, GenerationStatus.QUEUED),
    (GenerationStatus.RUNNING, GenerationStatus.QUEUED),
    (GenerationStatus.SUBMITTING, GenerationStatus.RUNNING),
    (GenerationStatus.QUEUED, GenerationStatus.RUNNING),
    (GenerationStatus.RUNNING, GenerationStatus.RUNNING),
    (GenerationStatus.SUBMITTING, GenerationStatus.COMPLETED),
    (GenerationStatus.QUEUED, GenerationStatus.COMPLETED),
    (GenerationStatus.RUNNING, GenerationStatus.COMPLETED),
    (GenerationStatus.PENDING, GenerationStatus.FAILED),
    (GenerationStatus.SUBMITTING, GenerationStatus.FAILED),
    (GenerationStatus.QUEUED, GenerationStatus.FAILED),
    (GenerationStatus.RUNNING, GenerationStatus.FAILED),
    (GenerationStatus.PENDING, GenerationStatus.CANCELLED),
    (GenerationStatus.SUBMITTING, GenerationStatus.CANCELLED),
    (GenerationStatus.QUEUED, GenerationStatus.CANCELLED),
    (GenerationStatus.RUNNING, GenerationStatus.CANCELLED),
}


@pytest.mark.parametrize(
    ("src", "dst"), list(itertools.product(GenerationStatus, GenerationStatus))
)
def test_transition_table(src: GenerationStatus, dst: GenerationStatus) -> None:
    assert can_transition(src, dst) is ((src, dst) in EXPECTED)


def test_terminal_states_have_no_way_out() -> None:
    for dst, sources in ALLOWED_FROM.items():
        assert not (sources & TERMINAL), dst


def _new(session: Session, name: str = "status-tests") -> Generation:
    key, _ = create_key(session, name=f"{name}-{NOW.timestamp()}-{id(session)}")
    return create_generation(
        session,
        tenant_id=key.tenant_id,
        model="fal-ai/flux-pro/kontext/text-to-image",
        input={"prompt": "a cat"},
        now=NOW,
        deadline_seconds=60,
        submit_grace_seconds=5,
    )


def _set_status(session: Session, gen_id: uuid.UUID, status: GenerationStatus) -> None:
    session.execute(GENERATIONS.update().where(Generation.id == gen_id).values(status=status.value))


@pytest.mark.parametrize(
    ("src", "dst"), list(itertools.product(GenerationStatus, GenerationStatus))
)
def test_compare_and_set_on_postgres(
    private_sessions: sessionmaker[Session], src: GenerationStatus, dst: GenerationStatus
) -> None:
    with private_sessions.begin() as session:
        gen = _new(session)
        _set_status(session, gen.id, src)
        won = transition(session, gen.id, to=dst, now=NOW)
        assert won is ((src, dst) in EXPECTED)
        status = session.scalar(select(Generation.status).where(Generation.id == gen.id))
        assert status == (dst.value if won else src.value)
        kinds = session.scalars(
            select(GenerationEvent.kind).where(GenerationEvent.generation_id == gen.id)
        ).all()
        assert kinds == (["created", "status"] if won else ["created"])


def test_second_writer_loses(private_sessions: sessionmaker[Session]) -> None:
    with private_sessions.begin() as session:
        gen = _new(session)
        assert transition(
            session,
            gen.id,
            to=GenerationStatus.SUBMITTING,
            now=NOW,
            allowed_from={GenerationStatus.PENDING},
        )
        assert not transition(
            session,
            gen.id,
            to=GenerationStatus.SUBMITTING,
            now=NOW,
            allowed_from={GenerationStatus.PENDING},
        )


def test_allowed_from_cannot_widen_the_table(private_sessions: sessionmaker[Session]) -> None:
    with (
        private_sessions.begin() as session,
        pytest.raises(ValueError, match="no legal transition"),
    ):
        transition(
            session,
            _new(session).id,
            to=GenerationStatus.PENDING,
            now=NOW,
            allowed_from={GenerationStatus.COMPLETED},
        )


def test_request_cancel_in_each_state(private_sessions: sessionmaker[Session]) -> None:
    expected = {
        GenerationStatus.PENDING: (CancelRequestOutcome.CANCELLED, GenerationStatus.CANCELLED),
        GenerationStatus.SUBMITTING: (CancelRequestOutcome.REQUESTED, GenerationStatus.SUBMITTING),
        GenerationStatus.QUEUED: (CancelRequestOutcome.REQUESTED, GenerationStatus.QUEUED),
        GenerationStatus.RUNNING: (CancelRequestOutcome.REQUESTED, GenerationStatus.RUNNING),
        GenerationStatus.COMPLETED: (
            CancelRequestOutcome.ALREADY_TERMINAL,
            GenerationStatus.COMPLETED,
        ),
        GenerationStatus.FAILED: (CancelRequestOutcome.ALREADY_TERMINAL, GenerationStatus.FAILED),
        GenerationStatus.CANCELLED: (
            CancelRequestOutcome.ALREADY_TERMINAL,
            GenerationStatus.CANCELLED,
        ),
    }
    for src, (outcome, after) in expected.items():
        with private_sessions.begin() as session:
            gen = _new(session)
            _set_status(session, gen.id, src)
            answer = request_cancel(session, gen.id, now=NOW)
            assert (answer.outcome, answer.status) == (outcome, after), src
            row = session.get(Generation, gen.id, populate_existing=True)
            assert row is not None
            assert row.status == after.value
            if outcome is CancelRequestOutcome.REQUESTED:
                assert row.cancel_requested_at == NOW
                again = request_cancel(session, gen.id, now=NOW)
                assert again.outcome is CancelRequestOutcome.ALREADY_REQUESTED
