"""Webhook receivers on free local ports: one that records what it is sent, and one that takes
every connection and never answers."""

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook

from tests.support.serving import serving


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answers: list[int | tuple[int, dict[str, str]]] = []
        """Status codes (with headers) to answer with, in order; then 200."""
        self.hold: threading.Event | None = None
        """When set, each request is recorded, then answered only once the event is set (or
        after 60 s): a receiver that is slow to answer."""
        self.answer_body = b""
        """The body of every answer."""
        self.connections = 0
        """TCP connections accepted: 0 means not a byte reached this receiver."""
        self.port = 0
        self.url = ""

    def verified(self, secret: str) -> list[Any]:
        """Every delivery's body, each verified with ``secret`` as a receiver would (Standard
        Webhooks); raises ``WebhookVerificationError`` at the first that does not verify."""
        return [Webhook(secret).verify(c["raw"], c["headers"]) for c in self.received]


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.received.append(
                {"body": json.loads(body), "raw": body, "headers": dict(self.headers.items())}
            )
            if receiver.hold is not None:
                receiver.hold.wait(60)
            answer = receiver.answers.pop(0) if receiver.answers else 200
            status, headers = answer if isinstance(answer, tuple) else (answer, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(receiver.answer_body)))
            self.end_headers()
            self.wfile.write(receiver.answer_body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def verify_request(self, request: Any, client_address: Any) -> bool:
            receiver.connections += 1
            return True

    server = Server(("127.0.0.1", 0), Handler)
    receiver.port = int(server.server_address[1])
    receiver.url = f"http://127.0.0.1:{receiver.port}/hook"
    with serving(server):
        yield receiver


@contextmanager
def black_hole() -> Iterator[str]:
    """A receiver that accepts every connection and never answers (a hung server): its URL.
    Connections are held open until the block ends, so a sender waits for its timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1024)
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            with contextlib.suppress(OSError):
                conn.close()
        server.close()
