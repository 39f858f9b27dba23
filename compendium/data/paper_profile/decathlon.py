"""UCF-101 (dynamic images) and Omniglot as released by the Visual Decathlon (72-px images).

The release's test labels are withheld (evaluation server), so, as is usual for the
Decathlon, the official validation set is used as test and validation is carved from the
official training set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from amcf.io import atomic_path
from compendium.data.errors import DataError
from compendium.data.fetch import RemoteFile
from compendium.data.info import DatasetInfo, DiskShape, register
from compendium.data.paper_profile.common import (
    SEED,
    VAL_FRACTION,
    extract,
    file_prepared,
    read_member,
)
from compendium.data.prepared import Prepared
from compendium.data.splits import carve_val

_URL = "http://www.robots.ox.ac.uk/~vgg/share/"
# sha256 as published in TensorFlow Datasets' checksums for visual_domain_decathlon.
DATA = RemoteFile("decathlon/decathlon-1.0-data.tar.gz", (_URL + "decathlon-1.0-data.tar.gz",),
                  "8eca928bda025d855c91a78db45b3b18bc322efd7b1462a041e62c27b3c83c25",
                  size=410_000_000)
DEVKIT = RemoteFile("decathlon/decathlon-1.0-devkit.tar.gz",
                    (_URL + "decathlon-1.0-devkit.tar.gz",),
                    "f86d9e128678434ff2a3a374f00eb3e2ec2267e15e53ddae5f19ff19378b5ff7",
                    size=30_000_000)


def _annotations(devkit: Path, task: str, part: str, dataset: str) -> dict:
    raw = read_member(devkit, f"decathlon-1.0/annotations/{task}_{part}.json", dataset)
    return json.loads(raw)


def make_prepare(task: str, dataset: str):
    def prepare(data_dir: Path, work_dir: Path) -> Prepared:
        inner = work_dir / f"{task}.tar"
        if not (work_dir / "images").is_dir():
            with atomic_path(inner) as tmp:
                tmp.write_bytes(read_member(data_dir / DATA.path, f"{task}.tar", dataset))
        root = extract(inner, work_dir / "images", dataset)
        inner.unlink(missing_ok=True)
        classes: list[str] = []
        files, labels, official = [], [], []
        for part, split in (("train", "train"), ("val", "test")):
            ann = _annotations(data_dir / DEVKIT.path, task, part, dataset)
            cats = [c["id"] for c in ann["categories"]]
            if not classes:
                classes = [str(c["name"]) for c in ann["categories"]]
            names = {im["id"]: im["file_name"].removeprefix("data/") for im in ann["images"]}
            for a in ann["annotations"]:
                if a["image_id"] not in names:
                    raise DataError(f"{dataset}: annotation {a['id']} names image "
                                    f"{a['image_id']}, which {task}_{part}.json does not list.")
                files.append(names[a["image_id"]])
                labels.append(cats.index(a["category_id"]))
                official.append(split)
        labels_arr = np.array(labels)
        split = carve_val(labels_arr, np.array(official, dtype=object), val=VAL_FRACTION,
                          seed=SEED, dataset=dataset)
        return file_prepared(root, files, labels_arr, classes, split)

    return prepare


_CITATION = ("Rebuffi, S.-A., Bilen, H. and Vedaldi, A. (2017). Learning multiple visual "
             "domains with residual adapters. NeurIPS. (Visual Domain Decathlon.)")
# images in train and val (the release's test is withheld), their size (shorter side 72 px)
# and what they hold; each task's tar, about 60 MB, is taken out of the archive, extracted
# beside it and then deleted: 120 MB at the peak
_DISK = {"ucf101": (9537, (96, 72)), "omniglot": (25968, (72, 72))}
for _task, _name, _classes, _title, _extra in (
    ("ucf101", "decathlon-ucf101", 101, "UCF-101 dynamic images (Visual Decathlon release).",
     "Soomro, K., Zamir, A. R. and Shah, M. (2012). UCF101. arXiv:1212.0402."),
    ("omniglot", "decathlon-omniglot", 1623, "Omniglot, 1,623 characters (Visual Decathlon "
     "release).", "Lake, B. M. et al. (2015). Science 350(6266)."),
):
    _images, _size = _DISK[_task]
    register(DatasetInfo(
        name=_name, role="target", profile="paper", classes=_classes, files=(DATA, DEVKIT),
        prepare=make_prepare(_task, _name), title=_title,
        licence="research use (Visual Decathlon; underlying dataset's own terms)",
        citation=f"{_CITATION}\n{_extra}",
        source="https://www.robots.ox.ac.uk/~vgg/decathlon/",
        sizes=None,
        disk=DiskShape(images=_images, size=_size,
                       extracted=(("images", 120_000_000),)),
        reasoning="Official Decathlon train split (10 % carved out for validation, seeded); "
                  "the official validation split serves as test because the test labels "
                  "are withheld by the release.",
    ))
