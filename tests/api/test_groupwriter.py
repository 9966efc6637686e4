"""The group writer on its own (``api/groupwriter.py``), with a recording write function: what
waits while a group is written is the next group, each caller gets its own outcome, a failing
write fails only its group, and closing answers what was queued."""

import asyncio
import threading
from collections.abc import Iterator, Sequence

import pytest

from api.groupwriter import GroupWriter

WAIT = 10.0


class Recorder:
    """A write function that records its groups, answers ``value * 10`` (a ``ValueError`` for
    a negative value) and, while ``gate`` is clear, holds its first group once taken."""

    def __init__(self, *, gated: bool = False) -> None:
        self.groups: list[list[int]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        if not gated:
            self.gate.set()

    def __call__(self, group: list[int]) -> Sequence[int | BaseException]:
        self.groups.append(list(group))
        self.entered.set()
        assert self.gate.wait(WAIT)
        return [ValueError(f"{v} is negative") if v < 0 else v * 10 for v in group]


@pytest.fixture
def gated() -> Iterator[tuple[GroupWriter[int, int], Recorder]]:
    recorder = Recorder(gated=True)
    writer: GroupWriter[int, int] = GroupWriter(recorder, name="test", max_group=100)
    yield writer, recorder
    recorder.gate.set()
    writer.close()


def test_what_waits_during_a_write_is_written_together_next(
    gated: tuple[GroupWriter[int, int], Recorder],
) -> None:
    writer, recorder = gated
    first = writer.submit(1)
    assert recorder.entered.wait(WAIT)
    rest = [writer.submit(v) for v in range(2, 8)]
    recorder.gate.set()
    assert [f.result(WAIT) for f in [first, *rest]] == [10, 20, 30, 40, 50, 60, 70]
    assert recorder.groups == [[1], [2, 3, 4, 5, 6, 7]]


def test_a_group_is_at_most_max_group_items() -> None:
    recorder = Recorder(gated=True)
    writer: GroupWriter[int, int] = GroupWriter(recorder, name="test", max_group=3)
    try:
        first = writer.submit(0)
        assert recorder.entered.wait(WAIT)
        futures = [writer.submit(v) for v in range(1, 8)]
        recorder.gate.set()
        assert [f.result(WAIT) for f in futures] == [v * 10 for v in range(1, 8)]
        assert first.result(WAIT) == 0
    finally:
        recorder.gate.set()
        writer.close()
    assert recorder.groups == [[0], [1, 2, 3], [4, 5, 6], [7]]


def test_each_caller_gets_its_own_outcome_value_or_exception(
    gated: tuple[GroupWriter[int, int], Recorder],
) -> None:
    writer, recorder = gated
    writer.submit(0)
    assert recorder.entered.wait(WAIT)
    good, bad, other = writer.submit(4), writer.submit(-1), writer.submit(5)
    recorder.gate.set()
    assert good.result(WAIT) == 40
    with pytest.raises(ValueError, match="-1 is negative"):
        bad.result(WAIT)
    assert other.result(WAIT) == 50
    assert recorder.groups[1] == [4, -1, 5]  # the bad one was written with its group


def test_a_write_that_raises_fails_its_group_and_the_writer_goes_on() -> None:
    calls: list[list[int]] = []

    def write(group: list[int]) -> Sequence[int | BaseException]:
        calls.append(group)
        if 13 in group:
            raise RuntimeError("the database said no")
        return group

    writer: GroupWriter[int, int] = GroupWriter(write, name="test", max_group=100)
    try:
        doomed = writer.submit(13)
        with pytest.raises(RuntimeError, match="the database said no"):
            doomed.result(WAIT)
        assert writer.submit(2).result(WAIT) == 2  # the same thread, still writing
    finally:
        writer.close()
    assert calls == [[13], [2]]


def test_a_write_with_too_few_outcomes_fails_every_caller() -> None:
    writer: GroupWriter[int, int] = GroupWriter(lambda group: group[1:], name="t", max_group=9)
    try:
        with pytest.raises(RuntimeError, match="0 outcomes for 1 items"):
            writer.submit(1).result(WAIT)
    finally:
        writer.close()


def test_close_answers_what_was_queued_and_the_next_use_starts_again() -> None:
    recorder = Recorder(gated=True)
    writer: GroupWriter[int, int] = GroupWriter(recorder, name="test", max_group=100)
    first = writer.submit(1)
    assert recorder.entered.wait(WAIT)
    queued = [writer.submit(v) for v in (2, 3)]
    closing = threading.Thread(target=writer.close)
    closing.start()
    recorder.gate.set()
    closing.join(WAIT)
    assert not closing.is_alive()
    assert [f.result(0) for f in [first, *queued]] == [10, 20, 30]  # answered before close ended
    try:
        assert writer.submit(4).result(WAIT) == 40
    finally:
        writer.close()
    assert recorder.groups == [[1], [2, 3], [4]]


def test_callers_on_an_event_loop_get_their_outcomes() -> None:
    recorder = Recorder()
    writer: GroupWriter[int, int] = GroupWriter(recorder, name="test", max_group=100)

    async def main() -> list[int | BaseException]:
        return await asyncio.gather(*(writer.put(v) for v in (1, -2, 3)), return_exceptions=True)

    try:
        one, two, three = asyncio.run(main())
    finally:
        writer.close()
    assert (one, three) == (10, 30)
    assert isinstance(two, ValueError)
    assert sorted(v for group in recorder.groups for v in group) == [-2, 1, 3]


@pytest.mark.parametrize("write_abandoned", [True, False])
def test_an_abandoned_item_is_written_only_if_asked(write_abandoned: bool) -> None:
    recorder = Recorder(gated=True)
    writer: GroupWriter[int, int] = GroupWriter(
        recorder, name="test", max_group=100, write_abandoned=write_abandoned
    )

    async def main() -> None:
        writer.submit(0)
        assert await asyncio.to_thread(recorder.entered.wait, WAIT)
        gone = asyncio.ensure_future(writer.put(7))  # its caller stops waiting before the write
        await asyncio.sleep(0)  # queued
        kept = writer.submit(8)
        cancelled = writer.submit(9)
        gone.cancel()
        assert cancelled.cancel()
        recorder.gate.set()
        assert await asyncio.wrap_future(kept) == 80
        with pytest.raises(asyncio.CancelledError):
            await gone

    try:
        asyncio.run(main())
    finally:
        recorder.gate.set()
        writer.close()
    assert recorder.groups == [[0], [7, 8, 9] if write_abandoned else [8]]
