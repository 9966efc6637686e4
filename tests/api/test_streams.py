"""Status streams: a cap per key (429), a cap on a stream's life, and one database check per
interval for every stream of the process, however many watch the same job."""

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from api.state import AppState
from genqueue.net import wait_until
from models.settings import Settings
from models.status import GenerationStatus
from tests.api.support import MODEL, RecordingPublisher, auth, live_server, move, new_key


@contextmanager
def _served(settings: Settings, **overrides: Any) -> Iterator[tuple[str, AppState]]:
    app = create_app(settings.model_copy(update=overrides), publisher=RecordingPublisher())
    state: AppState = app.state.genqueue
    try:
        with live_server(app) as base:
            yield base, state
    finally:
        state.close()


def _submit(base: str, key: str) -> str:
    answer = httpx.post(f"{base}/{MODEL}", json={"prompt": "watched"}, headers=auth(key))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["request_id"])


def _stream_url(base: str, rid: str) -> str:
    return f"{base}/fal-ai/flux-pro/requests/{rid}/status/stream"


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The stream's events, read as they come. Keep the iterator: dropping one half-read
    closes the connection (and so the stream)."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield dict(json.loads(line[len("data: ") :]))


def test_streams_per_key_are_capped_with_429(
    api_settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    key, other = new_key(pg_sessions), new_key(pg_sessions)
    with _served(api_settings, stream_max_per_key=2) as (base, state), httpx.Client() as http:
        rid = _submit(base, key)
        with ExitStack() as streams:
            held = []
            for _ in range(2):
                response = streams.enter_context(
                    http.stream("GET", _stream_url(base, rid), headers=auth(key))
                )
                assert response.status_code == 200
                held.append(_events(response))
                assert next(held[-1])["status"] == "IN_QUEUE"
            refused = http.get(_stream_url(base, rid), headers=auth(key))
            assert refused.status_code == 429, refused.text
            assert "2 open status streams" in refused.json()["detail"]
            # Another key has streams of its own (it sees only its own job).
            with http.stream(
                "GET", _stream_url(base, _submit(base, other)), headers=auth(other)
            ) as s:
                assert s.status_code == 200
        wait_until(lambda: state.streams.open_count() == 0, 10, what="the streams to close")
        with http.stream("GET", _stream_url(base, rid), headers=auth(key)) as again:
            assert again.status_code == 200


def test_a_stream_ends_after_its_maximum_life(
    api_settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    key = new_key(pg_sessions)
    with _served(api_settings, stream_max_seconds=0.5) as (base, state):
        rid = _submit(base, key)
        lines = []
        give_up = time.monotonic() + 30
        with httpx.stream("GET", _stream_url(base, rid), headers=auth(key)) as response:
            for line in response.iter_lines():
                lines.append(line)
                assert time.monotonic() < give_up, "the stream outlived its maximum life"
        assert json.loads(lines[0][len("data: ") :])["status"] == "IN_QUEUE"
        wait_until(lambda: state.streams.open_count() == 0, 10, what="the watch to be released")


def test_many_streams_of_one_job_share_one_database_check(
    api_settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    """Issue 19: every stream queried the database every interval (400 streams on one job:
    ~1,100 transactions/s). Now one check per interval serves them all: the statements run
    while 20 streams are open are those of one stream's checks."""
    key = new_key(pg_sessions)
    with _served(api_settings, stream_max_per_key=20) as (base, state), httpx.Client() as http:
        rid = _submit(base, key)
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(str(args[2]))

        with ExitStack() as streams:
            responses = [
                streams.enter_context(http.stream("GET", _stream_url(base, rid), headers=auth(key)))
                for _ in range(20)
            ]
            events = [_events(response) for response in responses]
            for each in events:
                assert next(each)["status"] == "IN_QUEUE"
            event.listen(state.engine, "before_cursor_execute", count)
            try:
                looks = state.streams.looks
                wait_until(lambda: state.streams.looks >= looks + 10, 30, what="ten checks")
                done = state.streams.looks - looks
                ran = len(statements)
                move(pg_sessions, rid, GenerationStatus.RUNNING, upstream_request_id="up-1")
                for each in events:  # every stream hears of the change
                    assert next(each)["status"] == "IN_PROGRESS"
            finally:
                event.remove(state.engine, "before_cursor_execute", count)
        # A queued job costs one query (the rows) per check, and one more for its position
        # while it waits to be sent; the 20 streams add nothing. (+1: a check in flight.)
        assert ran <= 2 * (done + 1), (ran, done, statements[:6])
