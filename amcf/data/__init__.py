"""The data layer: registry, fetching, splits, datasets and cards.

- :func:`amcf.data.commands.fetch` / ``amcf data fetch``: raw inputs into ``data/``;
- :func:`amcf.data.commands.prepare` / ``amcf data prepare``: decoded tensors or file lists,
  split manifest and card into ``build/data/<name>/``;
- :func:`load_splits`: a prepared dataset as :class:`Splits` for the trainer.

The names below are imported on first use (PEP 562): importing ``amcf.data.errors`` alone,
as the ``amcf`` command does before every stage, must not pay for torch (about 3 s on 2 cores).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "BatchAugment": "amcf.data.tensors",
    "DataError": "amcf.data.errors",
    "DatasetInfo": "amcf.data.registry",
    "Splits": "amcf.data.tensors",
    "TensorImageDataset": "amcf.data.tensors",
    "get_info": "amcf.data.registry",
    "iterate_batches": "amcf.data.tensors",
    "load_splits": "amcf.data.prepared",
    "names": "amcf.data.registry",
    "read_info": "amcf.data.prepared",
}
__all__ = [
    "BatchAugment",
    "DataError",
    "DatasetInfo",
    "Splits",
    "TensorImageDataset",
    "get_info",
    "iterate_batches",
    "load_splits",
    "names",
    "read_info",
]

if TYPE_CHECKING:
    from amcf.data.errors import DataError
    from amcf.data.prepared import load_splits, read_info
    from amcf.data.registry import DatasetInfo, get_info, names
    from amcf.data.tensors import BatchAugment, Splits, TensorImageDataset, iterate_batches


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'amcf.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
