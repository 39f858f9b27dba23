"""Animal-MNIST: 28x28 grey animal silhouettes, 10 COCO classes: a source domain.

The PyPI package declares TensorFlow as a dependency, so the wheel is downloaded, never
installed, and only its two data files are kept (gzip'd pickles, read with an unpickler that
accepts nothing but numpy arrays, and only after the wheel's sha256 matched).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from compendium.data.embedded.common import SEED
from compendium.data.errors import DataError
from compendium.data.fetch import WheelFiles
from compendium.data.info import DatasetInfo, register
from compendium.data.numpy_pickle import load_numpy_pickle
from compendium.data.prepared import Prepared
from compendium.data.splits import stratified_split

CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
_MEMBER = "animal_mnist/data/Animal_MNIST/"
FILES = WheelFiles(
    requirement="animal-mnist==0.4",
    wheel="animal_mnist-0.4-py3-none-any.whl",
    wheel_sha256="aeebf3d9de4552d6fd2d5701424e1a5b9020f8e5115d68df9db252f2f53ce2ce",
    members=(
        ("animals/animal_data_version_3.gz", _MEMBER + "animal_data_version_3.gz",
         "68a30346781a0984f839463a4615d2decb899d1ce65091bb92586311754a34ce"),
        ("animals/animal_label_version_3.gz", _MEMBER + "animal_label_version_3.gz",
         "dec8dba7c469830989fbab46825021a08a38470753a512f27ada847eced97b57"),
    ),
)
PER_CLASS = {"train": 400, "val": 50, "test": 50}


def load_array(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.asarray(load_numpy_pickle(
            f, "Animal-MNIST", "re-fetch the pinned wheel (animal-mnist==0.4)."))


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    images = load_array(data_dir / FILES.members[0][0])
    labels = load_array(data_dir / FILES.members[1][0]).astype(np.int64)
    if images.shape != (10000, 28, 28) or images.dtype != np.uint8 or labels.shape != (10000,):
        raise DataError(f"Animal-MNIST arrays have shape {images.shape} {images.dtype} and "
                        f"{labels.shape}; expected (10000, 28, 28) uint8 and (10000,).")
    split = stratified_split(labels, seed=SEED, dataset="animals", **PER_CLASS)
    return Prepared(classes=CLASSES, labels=labels,
                    ids=[f"animal_data_version_3.gz#{i}" for i in range(len(labels))],
                    split=split, images=images[:, None])


INFO = register(DatasetInfo(
    name="animals", role="source", profile="embedded", classes=10, files=(FILES,),
    prepare=prepare,
    title="Animal silhouettes: Animal-MNIST 0.4, masked grey COCO animal photos at 28x28.",
    licence="MIT (animal-mnist, Sina Mohammadi); derived from COCO images (CC BY 4.0 "
            "annotations; images under their Flickr licences)",
    citation="Mohammadi, S. (2025). Animal-MNIST (animal-mnist 0.4). PyPI. "
             "https://pypi.org/project/animal-mnist/",
    source="PyPI animal-mnist==0.4 wheel (pip download --no-deps), files "
           "animal_mnist/data/Animal_MNIST/animal_{data,label}_version_3.gz",
    sizes={"train": 4000, "val": 500, "test": 500},
    reasoning="Natural-image shapes as a second source. 500 of the 1,000 images per class "
              "(400/50/50) match the MNIST source's size, so the three sources cost the same "
              "to pretrain; the other 5,000 images stay unused.",
))
