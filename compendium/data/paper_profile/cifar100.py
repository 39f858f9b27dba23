"""CIFAR-100 (python version): the paper's second source domain."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from compendium.data.fetch import RemoteFile
from compendium.data.info import DatasetInfo, DiskShape, register
from compendium.data.numpy_pickle import load_numpy_pickle
from compendium.data.paper_profile.common import SEED, VAL_FRACTION, read_member
from compendium.data.prepared import Prepared
from compendium.data.splits import carve_val
from compendium.data.transforms import IMAGENET_MEAN, IMAGENET_STD

# The published hash is an md5 (the dataset page, torchvision); no sha256 is published.
ARCHIVE = RemoteFile("cifar100/cifar-100-python.tar.gz",
                     ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
                     "md5:eb9058c3a382ffc7106e4002c42a8d85", size=169_001_437)


def _load(archive: Path, member: str) -> dict:
    return load_numpy_pickle(io.BytesIO(read_member(archive, member, "cifar100")), "CIFAR-100",
                             "fetch the official archive again.", encoding="bytes")


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    archive = data_dir / ARCHIVE.path
    meta = _load(archive, "cifar-100-python/meta")
    classes = [c.decode() for c in meta[b"fine_label_names"]]
    parts = {s: _load(archive, f"cifar-100-python/{s}") for s in ("train", "test")}
    images = np.concatenate([np.asarray(p[b"data"], dtype=np.uint8) for p in parts.values()])
    labels = np.concatenate([np.asarray(p[b"fine_labels"]) for p in parts.values()])
    official = np.array(["train"] * len(parts["train"][b"fine_labels"])
                        + ["test"] * len(parts["test"][b"fine_labels"]), dtype=object)
    ids = [f"{s}/{f.decode()}" for s, p in parts.items() for f in p[b"filenames"]]
    split = carve_val(labels, official, val=VAL_FRACTION, seed=SEED, dataset="cifar100")
    return Prepared(classes=classes, labels=labels, ids=ids, split=split,
                    images=images.reshape(-1, 3, 32, 32), transform="paper",
                    mean=IMAGENET_MEAN, std=IMAGENET_STD)


INFO = register(DatasetInfo(
    name="cifar100", role="source", profile="paper", classes=100, files=(ARCHIVE,),
    prepare=prepare, title="CIFAR-100: 60,000 32x32 colour images in 100 classes.",
    licence="no explicit licence; free for research (A. Krizhevsky)",
    citation="Krizhevsky, A. (2009). Learning Multiple Layers of Features from Tiny Images. "
             "Technical report, University of Toronto.",
    source="https://www.cs.toronto.edu/~kriz/cifar.html",
    sizes={"train": 45000, "val": 5000, "test": 10000},
    disk=DiskShape(images=60000, size=(32, 32), kind="tensor"),  # read from the archive
    reasoning="Official 50,000/10,000 train/test; 10 % of each class's training images are "
              "carved out for validation (seeded).",
))
