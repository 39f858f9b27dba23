"""Fashion-MNIST's test set (Zalando product photos, 28x28 grey): a few-shot target.

Only the official test file is used. Its bytes come from the mirror, else from Debian's and
Ubuntu's package ``dataset-fashion-mnist`` (which installs the same files), else from the
official URLs; every copy is checked against the published sha256.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from compendium.data.embedded.common import SEED
from compendium.data.errors import DataError
from compendium.data.fetch import RemoteFile
from compendium.data.info import DatasetInfo, register
from compendium.data.prepared import Prepared
from compendium.data.splits import stratified_split

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]
PACKAGE = "dataset-fashion-mnist"
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # where the package installs the files
_URLS = ("https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
         "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/")


def _file(name: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(f"fashion/{name}", tuple(url + name for url in _URLS), sha256, size,
                      system_paths=(f"{SYSTEM_DIR}/{name}",), system_package=PACKAGE)


FILES = (
    _file("t10k-images-idx3-ubyte.gz",
          "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa", 4_422_079),
    _file("t10k-labels-idx1-ubyte.gz",
          "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05", 5_125),
)
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # IDX: unsigned bytes, 3 and 1 dimensions
N_IMAGES = 10_000
PER_CLASS = {"train": 100, "val": 10, "test": 50}


def read_idx(path: Path, magic: int, shape: tuple[int, ...]) -> np.ndarray:
    """A gzip'd IDX file of unsigned bytes: big-endian uint32 magic number and dimensions,
    then the values. Raises a DataError unless the magic number and shape are ``magic`` and
    ``shape``."""
    fix = f"delete {path} and run `amcf data fetch --only fashion`."
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path} is not a readable gzip file ({exc}). Fix: {fix}") from exc
    head = 4 * (1 + len(shape))
    header = np.frombuffer(data[:head], dtype=">u4") if len(data) >= head else None
    if header is None or int(header[0]) != magic:
        found = "a file too short for an IDX header" if header is None else int(header[0])
        raise DataError(f"{path} has IDX magic number {found}; expected {magic} (unsigned "
                        f"bytes, {len(shape)} dimensions). Fix: {fix}")
    dims = tuple(int(d) for d in header[1:])
    if dims != shape or len(data) - head != int(np.prod(shape)):
        raise DataError(f"{path} holds an array of shape {dims} and {len(data) - head} values; "
                        f"expected {shape}. Fix: {fix}")
    return np.frombuffer(data, dtype=np.uint8, offset=head).reshape(shape)


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    images = read_idx(data_dir / FILES[0].path, IMAGES_MAGIC, (N_IMAGES, 28, 28))
    labels = read_idx(data_dir / FILES[1].path, LABELS_MAGIC, (N_IMAGES,)).astype(np.int64)
    if labels.max() >= len(CLASSES):
        raise DataError(f"{data_dir / FILES[1].path} holds label {labels.max()}; expected 0..9. "
                        "Fix: delete it and run `amcf data fetch --only fashion`.")
    split = stratified_split(labels, seed=SEED, classes=CLASSES, dataset="fashion", **PER_CLASS)
    name = Path(FILES[0].path).name
    return Prepared(classes=CLASSES, labels=labels,
                    ids=[f"{name}#{i}" for i in range(len(labels))],
                    split=split, images=images[:, None].copy())


INFO = register(DatasetInfo(
    name="fashion", role="target", profile="embedded", classes=10, files=FILES,
    prepare=prepare,
    title="Product photos: Fashion-MNIST's test set, Zalando article images in 10 classes, "
          "28x28 grey.",
    licence="MIT (Zalando SE)",
    citation="Xiao, H., Rasul, K. and Vollgraf, R. (2017). Fashion-MNIST: a Novel Image "
             "Dataset for Benchmarking Machine Learning Algorithms. arXiv:1708.07747.",
    source="https://github.com/zalandoresearch/fashion-mnist (data/fashion/t10k-{images-idx3,"
           "labels-idx1}-ubyte.gz), also installed by the Debian/Ubuntu package "
           "dataset-fashion-mnist as /usr/share/datasets/fashion-mnist/",
    sizes={"train": 1000, "val": 100, "test": 500},
    reasoning="A domain none of the three sources covers: photos of clothes, shoes and bags. "
              "Training is a pool of 100 images per class (1,000) from which each run draws "
              "its few shots per class anew for each seed; 10 per class (100) for validation; "
              "50 per class (500) for test give a standard error of about 2 points. Only the "
              "official test file is needed (4.4 MB instead of 30 MB with the training file); "
              "8,400 of its 10,000 images stay unused.",
))
