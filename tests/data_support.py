"""Test support for the data tests: a local HTTP server and miniature image files."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
from pathlib import Path

import numpy as np
from PIL import Image

from scripts.rehearsal.server import serving


def serve(directory: Path, timeout_s: float = 60.0, *, flaky: dict | None = None):
    """Serve ``directory`` on 127.0.0.1 (a free port) while the block runs; yields the base
    URL. The rehearsal's server, which stops by itself after ``timeout_s`` at the latest, and
    which, like Python's, ignores Range requests.

    ``flaky`` makes it a :class:`FlakyHandler` set up by that dict, which it also uses as its
    log: ``ranges`` (answer Range requests), ``drop_after`` (cut the first body off after that
    many bytes), ``fail_first`` (answer the first request with that status); ``requests``
    gets each request's (Range header, status, body bytes sent).
    """
    if flaky is None:
        return serving(directory, timeout_s=timeout_s)
    flaky.setdefault("requests", [])
    handler = type("Flaky", (FlakyHandler,), {"setup_": flaky})
    return serving(directory, timeout_s=timeout_s, handler_class=handler)


class FlakyHandler(http.server.SimpleHTTPRequestHandler):
    """GET with Range support (or not), a connection dropped mid-body once, a failed first
    answer: what a long download from a real server meets."""

    setup_: dict = {}

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        cfg, path = self.setup_, Path(self.translate_path(self.path))
        asked = self.headers.get("Range")
        if not path.is_file():
            self.send_error(404)
            return
        if cfg.pop("fail_first", None) is not None:
            cfg["requests"].append((asked, 503, 0))
            self.send_error(503)
            return
        data = path.read_bytes()
        start = int(asked.removeprefix("bytes=").split("-")[0]) if asked else 0
        ranged = bool(asked) and cfg.get("ranges", False)
        if not ranged:
            start = 0
        body = data[start:]
        self.send_response(206 if ranged else 200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"v1"')
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if cfg.get("ranges", False):
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        drop = cfg.pop("drop_after", None)
        sent = body if drop is None else body[:drop]
        cfg["requests"].append((asked, 206 if ranged else 200, len(sent)))
        self.wfile.write(sent)
        if drop is not None:  # the connection breaks off mid-body
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def image_bytes(seed: int, fmt: str = "JPEG", size: int = 12, mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    shape = (size, size, 3) if mode == "RGB" else (size, size)
    img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()
