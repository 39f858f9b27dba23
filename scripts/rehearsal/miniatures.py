"""Miniature archives of the paper's datasets, each in its official format.

Every archive has the member names, list files and annotation formats of the real release
(a few tiny images per class instead of thousands), at the path under the data directory
that the dataset registry fetches it to. Serving the folder over HTTP and pointing
``$AMCF_DATA_URL`` at it sends the real fetch, verify, extract and split code through them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from amcf.io import write_json
from compendium.data.pins import FORMAT

PICTURE_SIZE = 48  # pixels of each miniature photo (the profile's crop is smaller)


def picture(label: int, index: int, size: int = PICTURE_SIZE) -> bytes:
    """A JPEG whose colour depends on its class (so there is something to learn) plus noise."""
    rng = np.random.default_rng(1000 * label + index)
    base = np.array([(label * 97) % 256, (label * 57 + 80) % 256, (label * 31 + 160) % 256])
    pixels = np.clip(base + rng.normal(0, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(members[name]), 0, 0o644
            tf.addfile(info, io.BytesIO(members[name]))
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def _lines(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode()


def cifar100() -> dict[str, bytes]:
    """cifar-100-python.tar.gz: pickled dicts of 3072-byte rows, 100 fine label names."""
    names = [f"class_{i:02d}" for i in range(100)]

    def part(per_class: int, offset: int) -> bytes:
        rows, labels, files = [], [], []
        for label in range(4):
            for i in range(per_class):
                img = Image.open(io.BytesIO(picture(label, offset + i, 32)))
                rows.append(np.asarray(img.convert("RGB")).transpose(2, 0, 1).reshape(-1))
                labels.append(label)
                files.append(f"{names[label]}_{offset + i}.png".encode())
        return pickle.dumps({b"data": np.stack(rows).astype(np.uint8), b"fine_labels": labels,
                             b"coarse_labels": [0] * len(labels), b"filenames": files})

    members = {"cifar-100-python/meta": pickle.dumps(
                   {b"fine_label_names": [n.encode() for n in names],
                    b"coarse_label_names": [b"all"]}),
               "cifar-100-python/train": part(10, 0), "cifar-100-python/test": part(3, 100)}
    return {"cifar100/cifar-100-python.tar.gz": _gzip(_tar_bytes(members))}


def mit_indoor67() -> dict[str, bytes]:
    """indoorCVPR_09.tar (Images/<scene>/<file>.jpg) and the official list files."""
    members, train, test = {}, [], []
    for label, scene in enumerate(("airport_inside", "bakery", "kitchen")):
        for i in range(10):
            rel = f"{scene}/{scene}_{i:04d}.jpg"
            members[f"Images/{rel}"] = picture(label, i)
            (train if i < 8 else test).append(rel)
    return {"mit-indoor67/indoorCVPR_09.tar": _tar_bytes(members),
            "mit-indoor67/TrainImages.txt": _lines(train),
            "mit-indoor67/TestImages.txt": _lines(test)}


def _mat(rows: list[tuple[str, int]]) -> bytes:
    files = np.empty((len(rows), 1), dtype=object)
    annotations = np.empty((len(rows), 1), dtype=object)
    for i, (rel, _) in enumerate(rows):
        files[i, 0] = np.array([rel])
        annotations[i, 0] = np.array([rel.removesuffix(".jpg")])
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"file_list": files, "annotation_list": annotations,
                           "labels": np.array([[label] for _, label in rows], dtype=np.uint8)})
    return buf.getvalue()


def stanford_dogs() -> dict[str, bytes]:
    """images.tar (Images/<wnid>-<breed>/<wnid>_<n>.jpg) and lists.tar (*.mat, labels 1..)."""
    members, lists = {}, {"train": [], "test": []}
    for label, folder in enumerate(("n02085620-Chihuahua", "n02085782-Japanese_spaniel",
                                    "n02085936-Maltese_dog")):
        for i in range(10):
            rel = f"{folder}/{folder.split('-')[0]}_{i}.jpg"
            members[f"Images/{rel}"] = picture(label, i)
            lists["train" if i < 8 else "test"].append((rel, label + 1))
    mats = {f"{s}_list.mat": _mat(rows) for s, rows in lists.items()}
    mats["file_list.mat"] = _mat(lists["train"] + lists["test"])
    return {"stanford-dogs/images.tar": _tar_bytes(members),
            "stanford-dogs/lists.tar": _tar_bytes(mats)}


def fgvc_aircraft() -> dict[str, bytes]:
    """fgvc-aircraft-2013b.tar.gz: data/images/<id>.jpg, variants.txt and the split lists."""
    base = "fgvc-aircraft-2013b/data"
    variants = ("707-320", "Cessna 172", "A300B4")
    members = {f"{base}/variants.txt": _lines(list(variants))}
    rows: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    k = 0
    for label, variant in enumerate(variants):
        for split, n in (("train", 4), ("val", 2), ("test", 2)):
            for _ in range(n):
                k += 1
                image_id = f"{1000000 + k:07d}"
                members[f"{base}/images/{image_id}.jpg"] = picture(label, k)
                rows[split].append(f"{image_id} {variant}")
    for split, lines in rows.items():
        members[f"{base}/images_variant_{split}.txt"] = _lines(lines)
    return {"fgvc-aircraft/fgvc-aircraft-2013b.tar.gz": _gzip(_tar_bytes(members))}


def caltech256() -> dict[str, bytes]:
    """256_ObjectCategories.tar: <nnn>.<name>/<nnn>_<kkkk>.jpg, with the clutter class."""
    members = {}
    for label, (folder, n) in enumerate((("001.ak47", 63), ("002.american-flag", 64),
                                         ("003.backpack", 63), ("257.clutter", 4))):
        for i in range(1, n + 1):
            members[f"256_ObjectCategories/{folder}/{folder[:3]}_{i:04d}.jpg"] = picture(label, i)
    return {"caltech256/256_ObjectCategories.tar": _tar_bytes(members)}


def decathlon() -> dict[str, bytes]:
    """decathlon-1.0-data.tar.gz (one tar per task) and the devkit's COCO-style annotations."""
    tasks, annotations = {}, {}
    for task in ("ucf101", "omniglot"):
        inner = {}
        for part, n in (("train", 8), ("val", 2)):
            images, anns = [], []
            for c in range(3):
                for _ in range(n):
                    k = len(images) + 1
                    name = f"{task}/{part}/{c + 1:04d}/{k:07d}.jpg"
                    inner[name] = picture(c, k, 32)
                    images.append({"id": k, "file_name": f"data/{name}", "width": 32,
                                   "height": 32})
                    anns.append({"id": k, "image_id": k, "category_id": 10 + c})
            annotations[f"decathlon-1.0/annotations/{task}_{part}.json"] = json.dumps({
                "images": images, "annotations": anns,
                "categories": [{"id": 10 + c, "name": f"{task}_{c}"} for c in range(3)],
            }).encode()
        tasks[f"{task}.tar"] = _tar_bytes(inner)
    return {"decathlon/decathlon-1.0-data.tar.gz": _gzip(_tar_bytes(tasks)),
            "decathlon/decathlon-1.0-devkit.tar.gz": _gzip(_tar_bytes(annotations))}


BUILDERS: dict[str, Callable[[], dict[str, bytes]]] = {
    "cifar100": cifar100, "mit-indoor67": mit_indoor67, "stanford-dogs": stanford_dogs,
    "fgvc-aircraft": fgvc_aircraft, "caltech256": caltech256, "decathlon": decathlon,
}


def build_site(site: Path, pins: Path) -> dict[str, str]:
    """Write every miniature under ``site`` (laid out like the data directory) and their
    sha256 pins to ``pins``; returns the pins."""
    hashes = {}
    for build in BUILDERS.values():
        for rel, data in build().items():
            path = site / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            hashes[rel] = hashlib.sha256(data).hexdigest()
    write_json(pins, {"format": FORMAT, "sha256": dict(sorted(hashes.items()))})
    return hashes
