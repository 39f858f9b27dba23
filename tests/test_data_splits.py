import numpy as np
import pytest

from compendium.data.errors import DataError
from compendium.data.splits import carve_val, counts, stratified_split


def _labels(per_class=(20, 25, 30)):
    return np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])


def test_counts_per_class_are_exact_and_unused_marked():
    labels = _labels()
    split = stratified_split(labels, test=5, val=3, train=8, seed=0)
    for c in range(3):
        mine = split[labels == c]
        assert (mine == "test").sum() == 5 and (mine == "val").sum() == 3
        assert (mine == "train").sum() == 8
        assert (mine == "").sum() == (labels == c).sum() - 16
    assert counts(split) == {"train": 24, "val": 9, "test": 15}


def test_fractions_take_test_first_then_val_from_the_rest():
    labels = _labels((100,))
    split = stratified_split(labels, test=0.2, val=0.25, seed=1)
    assert counts(split) == {"train": 60, "val": 20, "test": 20}


def test_same_seed_same_split_other_seed_differs():
    labels = _labels()
    a = stratified_split(labels, test=5, val=3, seed=7)
    b = stratified_split(labels, test=5, val=3, seed=7)
    c = stratified_split(labels, test=5, val=3, seed=8)
    assert (a == b).all()
    assert (a != c).any()


def test_too_few_images_names_the_class():
    with pytest.raises(DataError, match="class 'a' has 20 images"):
        stratified_split(_labels(), test=10, val=6, train=6, seed=0, classes=["a", "b", "c"])


def test_carve_val_keeps_official_test_and_carves_only_from_train():
    labels = _labels((40, 40))
    official = np.array(["train"] * 30 + ["test"] * 10 + ["train"] * 30 + ["test"] * 10,
                        dtype=object)
    split = carve_val(labels, official, val=0.1, seed=0)
    assert (split[official == "test"] == "test").all()
    assert counts(split) == {"train": 54, "val": 6, "test": 20}
    assert set(split[official == "train"]) == {"train", "val"}
