"""sha256 pins of downloaded files that have no published sha256.

Some archives have no published hash (MIT Indoor-67, FGVC-Aircraft) or only an md5
(CIFAR-100, Stanford Dogs, Caltech-256). The first download that passes every published
check records the file's sha256 in a lock file beside the data directory
(``downloads.lock`` for ``downloads/``); commit it, and every later fetch and prepare checks
the bytes against it. ``$AMCF_DATA_PINS`` names another lock file (the rehearsal's
miniature archives carry their own pins).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from amcf.io import atomic_path, write_json

PINS_ENV = "AMCF_DATA_PINS"
FORMAT = "amcf-pins/1"


def pins_path(data_dir: str | os.PathLike) -> Path:
    """The lock file that pins the files under ``data_dir``."""
    env = os.environ.get(PINS_ENV)
    if env:
        return Path(env)
    data_dir = Path(data_dir)
    return data_dir.parent / f"{data_dir.name}.lock"


def read_pins(path: Path) -> dict[str, str]:
    """{path under the data directory: sha256 hex}; empty when there is no lock file yet."""
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8"))["sha256"])


def add_pin(path: Path, rel: str, sha256: str) -> None:
    pins = read_pins(path)
    pins[rel] = sha256
    write_json(path, {"format": FORMAT, "sha256": dict(sorted(pins.items()))})


def restore_dvc_pin(data_dir: str | os.PathLike) -> str | None:
    """Under ``dvc repro``, put ``<data_dir>.dvc`` (``data.dvc``) back to its committed bytes.

    ``dvc repro`` commits a changed data source before any stage runs, even a frozen one, so
    a corrupted file in ``data/`` would silently become the pin of record. A stage that then
    finds the corruption calls this before it fails. Returns what it did, or None.
    """
    if "DVC_ROOT" not in os.environ:
        return None
    data_dir = Path(data_dir)
    pin = data_dir.parent / f"{data_dir.name}.dvc"
    if not pin.is_file():
        return None
    try:
        committed = subprocess.run(["git", "show", f"HEAD:./{pin.name}"], cwd=pin.parent,
                                   capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):  # not a git checkout, or never committed
        return None
    if pin.read_bytes() == committed:
        return None
    with atomic_path(pin) as tmp:
        tmp.write_bytes(committed)
    return (f"`dvc repro` had re-pinned {pin} to these bytes; it is back to the committed pin, "
            "so `dvc status` shows the difference until the file is fetched again")

