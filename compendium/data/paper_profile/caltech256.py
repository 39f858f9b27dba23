"""Caltech-256 with 30 or 60 training images per class; clutter dropped; the rest is test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compendium.data.fetch import RemoteFile
from compendium.data.info import DatasetInfo, DiskShape, register
from compendium.data.paper_profile.common import SEED, VAL_FRACTION, extract, file_prepared
from compendium.data.prepared import Prepared
from compendium.data.splits import carve_val, stratified_split

# The published hash is an md5 (torchvision's Caltech256); no sha256 is published.
ARCHIVE = RemoteFile(
    "caltech256/256_ObjectCategories.tar",
    ("https://data.caltech.edu/records/nyy15-4j048/files/256_ObjectCategories.tar",),
    "md5:67b4f42ca05d46448c6bb8ecd2220f6d", size=1_183_006_720)
# one extraction beside the prepared folders, shared by caltech256-30 and -60
SHARED = "caltech256-images"
CLUTTER = "257.clutter"
_TOP = "256_ObjectCategories"


def make_prepare(train_per_class: int):
    def prepare(data_dir: Path, work_dir: Path) -> Prepared:
        name = f"caltech256-{train_per_class}"
        root = extract(data_dir / ARCHIVE.path, work_dir.parent / SHARED, name)
        folders = sorted(p.name for p in (root / _TOP).iterdir()
                         if p.is_dir() and p.name != CLUTTER)
        files, labels = [], []
        for label, folder in enumerate(folders):
            for img in sorted((root / _TOP / folder).glob("*.jpg")):
                files.append(f"{_TOP}/{folder}/{img.name}")
                labels.append(label)
        labels = np.array(labels)
        official = stratified_split(labels, test=0, val=0, train=train_per_class, seed=SEED,
                                    classes=folders, dataset=name)
        official[official == ""] = "test"
        split = carve_val(labels, official, val=VAL_FRACTION, seed=SEED, dataset=name)
        classes = [f.split(".", 1)[1] for f in folders]
        return file_prepared(root, files, labels, classes, split,
                             meta={"train_per_class": train_per_class})

    return prepare


for _n in (30, 60):
    register(DatasetInfo(
        name=f"caltech256-{_n}", role="target", profile="paper", classes=256, files=(ARCHIVE,),
        prepare=make_prepare(_n),
        title=f"Caltech-256 with {_n} training images per class (257.clutter dropped).",
        licence="research use (Caltech); images from the web, rights with their owners",
        citation="Griffin, G., Holub, A. and Perona, P. (2007). Caltech-256 Object Category "
                 "Dataset. Technical report 7694, California Institute of Technology.",
        source="https://data.caltech.edu/records/nyy15-4j048",
        sizes={"train": 256 * (_n - _n // 10), "val": 256 * (_n // 10), "test": -1},
        # every image but the 827 of clutter is in a split (test takes the rest): both
        # datasets store a copy of all 29,780; web photographs, mostly 4:3
        disk=DiskShape(images=29780, size=(400, 300),
                       extracted=((f"../{SHARED}", 1_183_006_720),)),
        reasoning=f"AdaFilter's protocol: {_n} images per class drawn with a fixed seed for "
                  "training, every other image of the class for test; 10 % of the training "
                  "draw is carved out for validation (seeded).",
    ))
