"""Test support for the data tests: a local HTTP server and miniature image files."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from scripts.rehearsal.server import serving


def serve(directory: Path, timeout_s: float = 60.0):
    """Serve ``directory`` on 127.0.0.1 (a free port) while the block runs; yields the base
    URL. The rehearsal's server, which stops by itself after ``timeout_s`` at the latest."""
    return serving(directory, timeout_s=timeout_s)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    import socket

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
