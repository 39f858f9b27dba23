"""A few-shot training set drawn afresh for every seed from a target's training pool.

A target's prepared "train" split is a pool; a run with ``shots`` trains on ``shots`` images
per class of it, drawn by a generator seeded with the draw's index and the dataset's name.
Training seed s uses draw s and the search at position p draw p, so seed s < number of
searches trains on the images its scheme was searched on, and the spread over seeds includes
which few images one happened to get. Validation and test never change.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import torch

from amcf.datasets import Splits, TensorImageDataset
from compendium.data.errors import DataError


def shot_indices(labels: np.ndarray | torch.Tensor, shots: int, draw: int, *,
                 dataset: str) -> np.ndarray:
    """Positions in the pool of ``shots`` images of every class (sorted), for draw ``draw``.

    Each class's images are drawn without replacement; the same (dataset, draw) always gives
    the same images, and draws differ from one another."""
    if shots < 1:
        raise DataError(f"{dataset}: shots must be at least 1, got {shots}. Fix: set "
                        f"targets.{dataset}.shots in params.yaml to a positive count.")
    labels = np.asarray(labels)
    rng = np.random.default_rng([int(draw), zlib.crc32(dataset.encode())])
    chosen = []
    for c in np.unique(labels):
        pool = np.flatnonzero(labels == c)
        if pool.size < shots:
            raise DataError(f"{dataset}: class {int(c)} has {pool.size} images in its training "
                            f"pool, fewer than the {shots} shots asked for. Fix: lower "
                            f"targets.{dataset}.shots, or prepare a larger pool.")
        chosen.append(rng.choice(pool, size=shots, replace=False))
    return np.sort(np.concatenate(chosen))


def with_shots(splits: Splits, shots: int | None, draw: int) -> Splits:
    """``splits`` with its training set replaced by draw ``draw`` of ``shots`` per class
    (itself when ``shots`` is None: the whole pool trains)."""
    if shots is None:
        return splits
    train = splits.train
    if not isinstance(train, TensorImageDataset):
        raise DataError(f"{splits.name}: few-shot draws need a dataset held in memory (the "
                        f"embedded profile's), not {type(train).__name__}. Fix: set "
                        f"targets.{splits.name}.shots to null for this target.")
    idx = torch.from_numpy(shot_indices(train.labels.numpy(), shots, draw, dataset=splits.name))
    subset = TensorImageDataset(train.images[idx], train.labels[idx],
                                train.mean.flatten().tolist(), train.std.flatten().tolist(),
                                train.augment)
    return dataclasses.replace(splits, train=subset)
