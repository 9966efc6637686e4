"""A CDN on 127.0.0.1 for the media copies' tests: real HTTP, a tiny PNG for every path."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.serving import serving

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


class Cdn:
    """``/moved`` redirects to ``target``; any other path answers :data:`PNG`, after
    ``delay`` seconds. ``requests``: the paths asked for, in order."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.requests: list[str] = []
        self.target = ""
        self.url = ""


@contextmanager
def local_cdn(delay: float = 0.0) -> Iterator[Cdn]:
    cdn = Cdn(delay)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a copy client reuses its connections
        timeout = 10  # an idle kept-alive connection ends, so the server's close never hangs

        def do_GET(self) -> None:
            cdn.requests.append(self.path)
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", cdn.target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            time.sleep(cdn.delay)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: object) -> None:
            return

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # 5 by default: a burst of connects would wait for SYN retries

    server = Server(("127.0.0.1", 0), Handler)
    cdn.url = f"http://127.0.0.1:{server.server_address[1]}"
    with serving(server):
        yield cdn
