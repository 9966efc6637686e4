"""A scripted stand-in for genqueue's native API over real HTTP (one thread, one port)."""

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from tests.support.serving import serving

Answer = tuple[int, Any]


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 20)).save(buf, format="PNG")
    return buf.getvalue()


class StubApi:
    """``script[(METHOD, path)]`` is a list of answers given in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.script: dict[tuple[str, str], list[Answer]] = {}
        self.files: dict[str, bytes] = {}
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.script[(method, path)] = list(answers)

    def _answer(self, method: str, path: str) -> Answer:
        answers = self.script.get((method, path.split("?")[0]))
        if not answers:
            return 404, {"detail": "Not Found"}
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                stub.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(raw) if raw else None,
                    }
                )
                if self.path in stub.files:
                    self._send(200, stub.files[self.path], "image/png")
                    return
                status, body = stub._answer(self.command, self.path)
                payload = b"" if body is None else json.dumps(body).encode()  # None: no body
                self._send(status, payload, "application/json")

            def _send(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler


@contextmanager
def stub_api() -> Iterator[StubApi]:
    stub = StubApi()
    with serving(stub.server, poll_interval=0.05):
        yield stub
