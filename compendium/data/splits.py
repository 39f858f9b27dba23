"""Seeded, stratified train / val / test assignment.

A split is an array of strings, one per image: "train", "val", "test", or "" for an image the
benchmark does not use. Per class, the images are shuffled by one seeded generator (classes
visited in label order), then test is taken first and val is carved from what remains, so val
always comes out of the training data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from compendium.data.errors import DataError

SPLITS = ("train", "val", "test")
Count = int | float | None


def _take(spec: Count, available: int) -> int:
    if spec is None:
        return available
    if isinstance(spec, float):
        return int(round(spec * available))
    return spec


def stratified_split(
    labels: Sequence[int] | np.ndarray,
    *,
    test: Count,
    val: Count,
    train: Count = None,
    seed: int = 0,
    classes: Sequence[str] | None = None,
    dataset: str = "dataset",
) -> np.ndarray:
    """Assign each image to a split, class by class.

    Counts are images per class (int), a fraction of the class's images still available
    (float: test of all, val of what test left, train of what val left) or None (all that is
    left). Images left over are marked "" (unused).
    """
    labels = np.asarray(labels)
    split = np.full(labels.shape[0], "", dtype=object)
    rng = np.random.default_rng(seed)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        n_test = _take(test, idx.size)
        n_val = _take(val, idx.size - n_test)
        n_train = _take(train, idx.size - n_test - n_val)
        if n_test + n_val + n_train > idx.size:
            name = classes[int(c)] if classes is not None else str(c)
            raise DataError(f"{dataset}: class {name!r} has {idx.size} images but the split asks "
                            f"for {n_train} train + {n_val} val + {n_test} test. Fix: lower the "
                            "counts or add images to this class.")
        split[idx[:n_test]] = "test"
        split[idx[n_test : n_test + n_val]] = "val"
        split[idx[n_test + n_val : n_test + n_val + n_train]] = "train"
    return split


def carve_val(
    labels: Sequence[int] | np.ndarray,
    official: Sequence[str] | np.ndarray,
    *,
    val: Count,
    seed: int = 0,
    dataset: str = "dataset",
) -> np.ndarray:
    """Keep an official train/test split and carve a stratified val set out of its train part."""
    labels = np.asarray(labels)
    official = np.asarray(official, dtype=object)
    split = official.copy()
    is_train = official == "train"
    if is_train.any():
        split[is_train] = stratified_split(labels[is_train], test=0, val=val, seed=seed,
                                           dataset=dataset)
    return split


def counts(split: Sequence[str] | np.ndarray) -> dict[str, int]:
    split = np.asarray(split, dtype=object)
    return {s: int((split == s).sum()) for s in SPLITS}
