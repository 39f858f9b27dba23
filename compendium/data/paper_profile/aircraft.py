"""FGVC-Aircraft 2013b at the variant level (100 classes), official train/val/test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compendium.data.errors import DataError
from compendium.data.fetch import RemoteFile
from compendium.data.info import DatasetInfo, DiskShape, register
from compendium.data.paper_profile.common import extract, file_prepared
from compendium.data.prepared import Prepared

# No hash has been published for this archive: known_hash None (sha256 logged on download).
ARCHIVE = RemoteFile(
    "fgvc-aircraft/fgvc-aircraft-2013b.tar.gz",
    ("https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",),
    None, size=2_753_340_328)
EXTRACTED = "images"
_DATA = "fgvc-aircraft-2013b/data"


def _pairs(path: Path) -> list[tuple[str, str]]:
    out = []
    for ln in path.read_text(encoding="utf-8").splitlines():
        if ln.strip():
            image_id, variant = ln.strip().split(" ", 1)
            out.append((image_id, variant))
    return out


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    root = extract(data_dir / ARCHIVE.path, work_dir / EXTRACTED, "fgvc-aircraft")
    variants = (root / _DATA / "variants.txt").read_text(encoding="utf-8").splitlines()
    classes = [v.strip() for v in variants if v.strip()]
    files, labels, split = [], [], []
    for s in ("train", "val", "test"):
        for image_id, variant in _pairs(root / _DATA / f"images_variant_{s}.txt"):
            if variant not in classes:
                raise DataError(f"FGVC-Aircraft: variant {variant!r} of image {image_id} is not "
                                "in variants.txt; the archive is not the 2013b release.")
            files.append(f"{_DATA}/images/{image_id}.jpg")
            labels.append(classes.index(variant))
            split.append(s)
    return file_prepared(root, files, labels, classes, np.array(split, dtype=object))


INFO = register(DatasetInfo(
    name="fgvc-aircraft", role="target", profile="paper", classes=100, files=(ARCHIVE,),
    prepare=prepare, title="FGVC-Aircraft 2013b, 100 aircraft variants, official splits.",
    licence="research use only (images by aircraft spotters, see the dataset page)",
    citation="Maji, S., Rahtu, E., Kannala, J., Blaschko, M. and Vedaldi, A. (2013). "
             "Fine-grained visual classification of aircraft. arXiv:1306.5151.",
    source="https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
    sizes={"train": 3334, "val": 3333, "test": 3333},
    # 1-2 megapixel photographs, mostly 3:2
    disk=DiskShape(images=10000, size=(1500, 1000), extracted=((EXTRACTED, 2_760_000_000),)),
    reasoning="The official train / val / test split (val is the official validation set, "
              "itself part of the official trainval data). The 20-px copyright banner at the "
              "bottom of each image is kept, as in torchvision's loader.",
))
