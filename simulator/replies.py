"""What the simulator answers to one call, and the canned answers of injected faults."""

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from simulator.faults import FaultRule

Action = Literal["respond", "reset"]

INGRESS_502_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
MALFORMED_BODY = b'{"status": "IN_QUEUE", "request_id": <html>upstream glitch'


@dataclass(slots=True)
class Reply:
    """An HTTP answer, or an instruction to drop the connection (``action="reset"``).

    The call is first held ``delay`` seconds; with ``replay`` set the answer is then computed
    afresh (a ``hang`` fault answers normally, with the state as it is by then). ``label`` is
    the ``responses`` counter key suffix: the status code, or the fault kind when the answer is
    not a plain one.
    """

    status_code: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    action: Action = "respond"
    delay: float = 0.0
    replay: bool = False
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            self.label = str(self.status_code)

    def render(self) -> bytes:
        """The body bytes (JSON-encoded unless already bytes or text)."""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str) and self.media_type != "application/json":
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


def detail(status_code: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """A ``{"detail": message}`` answer."""
    return Reply(status_code, {"detail": message}, headers or {})


def fault_reply(rule: FaultRule, op: str) -> Reply:
    """The answer of a call-level fault (``http``, ``retry_after``, ``ingress_502``, ...)."""
    if rule.kind == "reset":
        return Reply(0, action="reset", delay=rule.hold_seconds, label="reset")
    if rule.kind == "hang":
        return Reply(0, delay=rule.hold_seconds, replay=True, label="hang")
    if rule.kind == "retry_after":
        code = rule.status_code or 429
        seconds = rule.retry_after
        value = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        body = rule.body if rule.body is not None else {"detail": "Too many requests"}
        headers = {**rule.headers, "Retry-After": value}
        return Reply(code, body, headers, delay=rule.hold_seconds)
    if rule.kind == "ingress_502":
        code = rule.status_code or 502
        return Reply(
            code, INGRESS_502_HTML, dict(rule.headers), "text/html", delay=rule.hold_seconds
        )
    if rule.kind == "malformed":
        code = rule.status_code or (202 if op in ("status", "cancel") else 200)
        return Reply(
            code,
            MALFORMED_BODY,
            dict(rule.headers),
            delay=rule.hold_seconds,
            label="malformed",
        )
    code = rule.status_code or 500
    body = rule.body if rule.body is not None else {"detail": _phrase(code)}
    return Reply(code, body, dict(rule.headers), delay=rule.hold_seconds)


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return f"HTTP {code}"
