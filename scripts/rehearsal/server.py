"""A static HTTP server on 127.0.0.1 for the rehearsal's miniature archives."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass  # the fetch logs what it downloads


@contextmanager
def serving(directory: Path, timeout_s: float | None = None,
            handler_class: type[http.server.SimpleHTTPRequestHandler] = _Handler
            ) -> Iterator[str]:
    """Serve ``directory`` from a free port of 127.0.0.1 while the block runs; yields the
    base URL. The server thread stops when the block exits, also on an error, and, with
    ``timeout_s``, by itself after that long at the latest (so a hung test cannot leave it
    running). ``handler_class`` answers the requests (tests: a flaky server)."""
    handler = functools.partial(handler_class, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)
    thread.start()
    timer = None
    if timeout_s is not None:
        timer = threading.Timer(timeout_s, server.shutdown)
        timer.daemon = True
        timer.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        if timer is not None:
            timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
