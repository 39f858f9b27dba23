"""Helpers shared by the embedded dataset modules."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

SEED = 0


def load_csv_gz(path: Path) -> np.ndarray:
    """A headerless integer CSV (pixel columns, label last), gzip'd, as an int array."""
    with gzip.open(path, "rt") as f:
        return np.loadtxt(f, delimiter=",", dtype=np.int64)


def rows(name: str, n: int) -> list[str]:
    return [f"{name}#row{i}" for i in range(n)]
