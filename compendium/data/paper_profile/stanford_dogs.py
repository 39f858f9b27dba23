"""Stanford Dogs: 120 breeds, official train/test lists (100 train images per class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from compendium.data.fetch import RemoteFile
from compendium.data.info import DatasetInfo, DiskShape, register
from compendium.data.paper_profile.common import SEED, VAL_FRACTION, extract, file_prepared
from compendium.data.prepared import Prepared
from compendium.data.splits import carve_val

_URL = "http://vision.stanford.edu/aditya86/ImageNetDogs/"
# Published hashes are md5 (as used by several loaders); no sha256 is published.
IMAGES = RemoteFile("stanford-dogs/images.tar", (_URL + "images.tar",),
                    "md5:1bb1f2a596ae7057f99d7d75860002ef", size=793_579_520)
LISTS = RemoteFile("stanford-dogs/lists.tar", (_URL + "lists.tar",),
                   "md5:edbb9f16854ec66506b5f09b583e0656", size=481_280)


def _read_mat(path: Path) -> tuple[list[str], np.ndarray]:
    mat = scipy.io.loadmat(path)
    files = [str(np.asarray(f).ravel()[0]) for f in mat["file_list"].ravel()]
    return files, np.asarray(mat["labels"]).ravel().astype(np.int64) - 1


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    root = extract(data_dir / IMAGES.path, work_dir / "images", "stanford-dogs")
    lists = extract(data_dir / LISTS.path, work_dir / "lists", "stanford-dogs")
    parts = {s: _read_mat(lists / f"{s}_list.mat") for s in ("train", "test")}
    files = [f"Images/{f}" for s in parts for f in parts[s][0]]
    labels = np.concatenate([parts[s][1] for s in parts])
    folders = sorted({f.split("/")[1] for f in files})
    classes = [f.split("-", 1)[1] for f in folders]
    official = np.array([s for s in parts for _ in parts[s][0]], dtype=object)
    split = carve_val(labels, official, val=VAL_FRACTION, seed=SEED, dataset="stanford-dogs")
    return file_prepared(root, files, labels, classes, split)


INFO = register(DatasetInfo(
    name="stanford-dogs", role="target", profile="paper", classes=120, files=(IMAGES, LISTS),
    prepare=prepare, title="Stanford Dogs: 120 dog breeds from ImageNet, official lists.",
    licence="research use (images from ImageNet; rights with their owners)",
    citation="Khosla, A., Jayadevaprakash, N., Yao, B. and Fei-Fei, L. (2011). Novel dataset "
             "for fine-grained image categorization: Stanford Dogs. CVPR Workshop on FGVC.",
    source="http://vision.stanford.edu/aditya86/ImageNetDogs/",
    sizes={"train": 10800, "val": 1200, "test": 8580},
    # ImageNet photographs, typically 500 x 375
    disk=DiskShape(images=20580, size=(500, 375),
                   extracted=(("images", 793_579_520), ("lists", 481_280))),
    reasoning="Official lists (100 train images per class, 8,580 test); 10 % of each class's "
              "training images are carved out for validation (seeded).",
))
