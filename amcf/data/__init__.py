"""The data layer: registry, fetching, splits, datasets and cards.

- :func:`amcf.data.commands.fetch` / ``amcf data fetch``: raw inputs into ``data/``;
- :func:`amcf.data.commands.prepare` / ``amcf data prepare``: decoded tensors or file lists,
  split manifest and card into ``build/data/<name>/``;
- :func:`load_splits`: a prepared dataset as :class:`Splits` for the trainer.
"""

from amcf.data.errors import DataError
from amcf.data.prepared import load_splits, read_info
from amcf.data.registry import DatasetInfo, get_info, names
from amcf.data.tensors import BatchAugment, Splits, TensorImageDataset, iterate_batches

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
