"""A fake fal upstream on ``httpx.MockTransport`` that records every request it gets.

Shared by the tests of this directory (``conftest.py`` turns it into fixtures).
"""

from typing import Any

import httpx

KEY = "fal-key-id-0001:9f8e7d6c5b4a-super-secret"
BASE = "https://relay.example"


class FakeUpstream:
    """Answers every request with the configured reply (a fresh response each time) or raises
    the configured transport error; ``requests`` is what the client actually sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._reply: dict[str, Any] = {"status_code": 500}
        self._error: type[httpx.TransportError] | None = None

    def reply(
        self,
        status_code: int,
        *,
        json: Any = None,
        text: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._error = None
        self._reply = {"status_code": status_code, "headers": headers or {}}
        if text is not None:
            self._reply["text"] = text
        elif json is not None:
            self._reply["json"] = json

    def fail(self, error: type[httpx.TransportError]) -> None:
        self._error = error

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._error is not None:
            raise self._error("simulated failure", request=request)
        return httpx.Response(**self._reply)

    @property
    def last(self) -> httpx.Request:
        assert self.requests, "no request was sent"
        return self.requests[-1]
