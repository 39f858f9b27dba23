"""MIT Indoor-67 scene recognition with the official 80/20-per-class train/test lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compendium.data.fetch import RemoteFile
from compendium.data.info import DatasetInfo, DiskShape, register
from compendium.data.paper_profile.common import SEED, VAL_FRACTION, extract, file_prepared
from compendium.data.prepared import Prepared
from compendium.data.splits import carve_val

# No hash has been published for these files: known_hash None (sha256 logged on download).
ARCHIVE = RemoteFile("mit-indoor67/indoorCVPR_09.tar",
                     ("http://groups.csail.mit.edu/vision/LabelMe/NewImages/indoorCVPR_09.tar",),
                     None, size=2_590_000_000)
EXTRACTED = "images"
TRAIN_LIST = RemoteFile("mit-indoor67/TrainImages.txt",
                        ("http://web.mit.edu/torralba/www/TrainImages.txt",), None)
TEST_LIST = RemoteFile("mit-indoor67/TestImages.txt",
                       ("http://web.mit.edu/torralba/www/TestImages.txt",), None)


def _read_list(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def prepare(data_dir: Path, work_dir: Path) -> Prepared:
    root = extract(data_dir / ARCHIVE.path, work_dir / EXTRACTED, "mit-indoor67")
    listed = {s: _read_list(data_dir / f.path) for s, f in (("train", TRAIN_LIST),
                                                           ("test", TEST_LIST))}
    classes = sorted({p.split("/")[0] for files in listed.values() for p in files})
    files = [f"Images/{p}" for s in ("train", "test") for p in listed[s]]
    labels = np.array([classes.index(p.split("/")[0]) for s in ("train", "test")
                       for p in listed[s]])
    official = np.array([s for s in ("train", "test") for _ in listed[s]], dtype=object)
    split = carve_val(labels, official, val=VAL_FRACTION, seed=SEED, dataset="mit-indoor67")
    return file_prepared(root, files, labels, classes, split)


INFO = register(DatasetInfo(
    name="mit-indoor67", role="target", profile="paper", classes=67,
    files=(ARCHIVE, TRAIN_LIST, TEST_LIST), prepare=prepare,
    title="MIT Indoor-67: indoor scenes, 67 classes, official train/test lists.",
    licence="research use (MIT CSAIL); images from the web, rights with their owners",
    citation="Quattoni, A. and Torralba, A. (2009). Recognizing indoor scenes. CVPR.",
    source="https://web.mit.edu/torralba/www/indoor.html",
    sizes={"train": 4824, "val": 536, "test": 1340},
    # mostly 4:3 photographs; the whole archive (15,620 images) is extracted
    disk=DiskShape(images=6700, size=(640, 480), extracted=((EXTRACTED, 2_590_000_000),)),
    reasoning="Official lists (80 train / 20 test per class); 10 % of each class's training "
              "images are carved out for validation (seeded).",
))
