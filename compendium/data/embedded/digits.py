"""scikit-learn's digits (1,797 8x8 images, 43 writers): a few-shot target close to MNIST."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from compendium.data.embedded.common import SEED, load_csv_gz, rows
from compendium.data.fetch import PackageFile
from compendium.data.images import fit_to_canvas, stack
from compendium.data.info import DatasetInfo, register
from compendium.data.prepared import Prepared
from compendium.data.splits import stratified_split

FILE = PackageFile("digits/digits.csv.gz", "scikit-learn", "1.9.1",
                   "sklearn/datasets/data/digits.csv.gz",
                   "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22")
# test first, then val, then every other image into the training pool that each seed draws
# its few shots from (targets.digits.shots; compendium/stages/fewshot.py)
PER_CLASS = {"train": None, "val": 10, "test": 50}


def to_28(pixels: np.ndarray) -> np.ndarray:
    """8x8 values 0..16 -> 28x28 uint8 with the digit in MNIST's centred 20x20 box."""
    img = Image.fromarray((pixels.reshape(8, 8) * 255 // 16).astype(np.uint8))
    return fit_to_canvas(img, inner=20)


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    table = load_csv_gz(data_dir / FILE.path)
    labels = table[:, 64]
    images = stack([to_28(row[:64]) for row in table])
    split = stratified_split(labels, seed=SEED, dataset="digits", **PER_CLASS)
    return Prepared(classes=[str(d) for d in range(10)], labels=labels,
                    ids=rows("digits.csv.gz", len(labels)), split=split, images=images)


INFO = register(DatasetInfo(
    name="digits", role="target", profile="embedded", classes=10, files=(FILE,),
    prepare=prepare, title="Handwritten digits: scikit-learn's 8x8 digits, upsampled to 28x28.",
    licence="CC BY 4.0 (UCI Optical Recognition of Handwritten Digits); scikit-learn is BSD-3",
    citation="Alpaydin, E. and Kaynak, C. (1998). Optical Recognition of Handwritten Digits. "
             "UCI Machine Learning Repository. https://doi.org/10.24432/C50P49",
    source="PyPI scikit-learn==1.9.1, file sklearn/datasets/data/digits.csv.gz "
           "(what sklearn.datasets.load_digits reads)",
    sizes={"train": 1197, "val": 100, "test": 500},
    reasoning="A few-shot target: every seed trains on three images per class drawn afresh "
              "from a pool of the 1,197 images that val and test leave (targets.digits.shots "
              "in params.yaml). With 30 training images per class every MNIST-based method "
              "scored 97-98 %, at the ceiling where no method can be told apart; with 3 per "
              "class the best methods score about 75-85 %, and the MNIST source fits while "
              "the animal and emoji sources do not, the case where a source that does not "
              "help should step aside. 10 per class (100) for validation give the search's "
              "fitness 1 % steps; 50 per class (500) for test give a standard error of about "
              "2 points at 80 % accuracy. The 8x8 digits are upsampled into MNIST's 20x20 box "
              "so that the domain gap to the MNIST source is writing style and resolution, "
              "not scale.",
))
