"""A test's own HTTP server (``http.server``), served from a thread while a block runs."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import BaseServer


@contextmanager
def serving(server: BaseServer, poll_interval: float = 0.5) -> Iterator[None]:
    """Serve ``server`` from a daemon thread until the block ends; then stop it, close its
    socket and wait for the thread (a test's server ends with the test)."""
    thread = threading.Thread(target=server.serve_forever, args=(poll_interval,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
