"""Prepared datasets on disk, and :func:`load_splits` that turns them into :class:`Splits`.

Layout of ``<prepared_dir>/<name>/`` (written atomically, file by file):

- ``info.json``: kind ("tensor" or "files"), role, profile, classes, images per split,
  image size, channels, mean/std, sha256 of every raw input, seed;
- ``manifest.csv``: ``index,id,label,class,split``: one row per used image; ``id`` names the
  raw image (archive member, file path or row of a package file), so any result can be traced
  back to its images;
- ``tensors.pt`` (kind "tensor"): uint8 images (N, C, H, W), labels and split codes in
  manifest order, decoded once so that training never decodes an image file;
- kind "files": ``info.json``'s ``root`` is the extracted archive that the manifest's ids are
  relative to, and ``views/`` holds every used image once more as uint8 pixels, decoded and
  resized once as the paper's recipe starts (training images at shorter side 256, validation
  and test images as their fixed 224-px centre crops; :mod:`compendium.data.views`), which is
  what training reads;
- ``card.md``: the generated dataset card.

An image of a split that cannot be decoded (a damaged file in a published archive) is left
out of the prepared dataset, and info.json and the card name it (``damaged_images``);
:func:`compendium.data.commands.prepare_dataset` stops when there are too many.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amcf.datasets import BatchAugment, Splits, TensorImageDataset
from amcf.feed import CropRecipe, DeviceFeed
from amcf.io import read_json, torch_save, write_json, write_text
from compendium.data.errors import DataError
from compendium.data.splits import SPLITS, counts
from compendium.data.transforms import FileImageDataset, paper_transform
from compendium.data.views import DIR as VIEWS_DIR
from compendium.data.views import FORMAT as VIEWS_FORMAT
from compendium.data.views import PackedImages, stored_bytes, write_views

FORMAT = "amcf-prepared/1"
EMBEDDED_MEAN = (0.5,)
EMBEDDED_STD = (0.5,)
DEFAULT_AUGMENT = BatchAugment(pad=2, flip=False)
PAPER_SIZES = {"image_size": 224, "resize": 256}  # the paper's crop and the resize before it


@dataclass
class Prepared:
    """A decoded dataset before it is written: one entry per image, in a fixed order."""

    classes: list[str]
    labels: np.ndarray
    ids: list[str]
    split: np.ndarray
    images: np.ndarray | None = None  # uint8 (N, C, H, W) for kind "tensor"
    root: Path | None = None  # for kind "files": directory the ids are relative to
    transform: str = "embedded"  # "embedded": TensorImageDataset; "paper": 224-px recipe
    mean: tuple[float, ...] = EMBEDDED_MEAN
    std: tuple[float, ...] = EMBEDDED_STD
    meta: dict[str, Any] = field(default_factory=dict)
    # kind "files": each image's original (width, height) by id, as decoded when checked
    # (for the disk check before the uint8 views are written; not written itself)
    image_sizes: dict[str, tuple[int, int]] | None = None

    def used(self) -> Prepared:
        """Only the images that belong to a split, in their original order."""
        keep = np.flatnonzero(np.asarray(self.split, dtype=object) != "")
        return Prepared(
            classes=self.classes, labels=np.asarray(self.labels)[keep],
            ids=[self.ids[i] for i in keep], split=np.asarray(self.split, dtype=object)[keep],
            images=None if self.images is None else self.images[keep], root=self.root,
            transform=self.transform, mean=self.mean, std=self.std,
            meta={**self.meta, "unused_images": self.meta.get("unused_images", 0)
                  + int(len(self.ids) - keep.size)}, image_sizes=self.image_sizes)


def planned_copy(shape: Any, folder: Path) -> list[tuple[str, Path, int]]:
    """(what, path, about how many bytes) of each copy of the images that
    :func:`write_prepared` writes for a dataset of :class:`~compendium.data.info.DiskShape`
    ``shape`` into ``folder``: the disk plan's lines for it, so that they follow the format."""
    if shape.kind == "tensor":
        width, height = shape.size
        return [("uint8 tensors", folder / "tensors.pt",
                 shape.images * shape.channels * width * height)]
    # every image counted at its training size (shorter side 256), the larger of its two
    # stored forms, since the registry does not split its estimate by split
    return [(f"uint8 views ({PAPER_SIZES['resize']}/{PAPER_SIZES['image_size']} px)",
             folder / VIEWS_DIR, shape.images * stored_bytes(*shape.size, "train"))]


def write_prepared(out_dir: Path, info: dict[str, Any], prep: Prepared, card: str) -> Path:
    """Write ``prep`` (only the used images) under ``out_dir``; returns ``out_dir``. (Its
    callers check the disk first: compendium.data.disk.check_copy.)"""
    prep = prep.used()
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["index", "id", "label", "class", "split"])
    for i, (id_, y, s) in enumerate(zip(prep.ids, prep.labels, prep.split, strict=True)):
        writer.writerow([i, id_, int(y), prep.classes[int(y)], s])
    write_text(out_dir / "manifest.csv", buf.getvalue())
    codes = np.array([SPLITS.index(s) for s in prep.split], dtype=np.int8)
    payload: dict[str, Any] = {"format": FORMAT, "labels": torch.as_tensor(prep.labels).long(),
                               "split": torch.as_tensor(codes), "classes": list(prep.classes)}
    kind = "files" if prep.images is None else "tensor"
    stored = None
    if kind == "tensor":
        payload["images"] = torch.from_numpy(np.ascontiguousarray(prep.images))
        shape = list(prep.images.shape[1:])
    else:
        shape = None
        if prep.transform == "paper" and prep.root is not None:
            sizes = {**PAPER_SIZES, **{k: prep.meta[k] for k in PAPER_SIZES if k in prep.meta}}
            stored = write_views(prep.root, prep.ids, list(prep.split), out_dir / "views",
                                 resize=sizes["resize"], size=sizes["image_size"])
    torch_save(payload, out_dir / "tensors.pt")
    full = {**info, "format": FORMAT, "kind": kind, "transform": prep.transform,
            "classes": list(prep.classes), "num_classes": len(prep.classes),
            "counts": counts(prep.split), "image_shape": shape, "mean": list(prep.mean),
            "std": list(prep.std),
            "root": None if prep.root is None else _relative(prep.root, out_dir),
            "stored": stored, **prep.meta}
    write_json(out_dir / "info.json", full)
    write_text(out_dir / "card.md", card)
    return out_dir


def _relative(root: Path, out_dir: Path) -> str:
    # relative, so a prepared tree can be moved as a whole (caltech256-30/-60 share one
    # extraction beside them)
    return os.path.relpath(Path(root).resolve(), out_dir.resolve())


def dataset_dir(name: str, prepared_dir: str | Path) -> Path:
    """``prepared_dir/name`` (or ``prepared_dir`` itself when it holds the dataset)."""
    root = Path(prepared_dir)
    for cand in (root / name, root):
        if (cand / "info.json").is_file() and read_json(cand / "info.json").get("name") == name:
            return cand
    raise DataError(f"dataset {name!r} is not prepared under {root} (no {root / name}/info.json)."
                    f" Fix: run `amcf data prepare --only {name} --out {root}` after "
                    "`amcf data fetch`.")


def read_info(name: str, prepared_dir: str | Path) -> dict[str, Any]:
    return read_json(dataset_dir(name, prepared_dir) / "info.json")


def load_splits(
    name: str,
    prepared_dir: str | Path,
    *,
    augment: BatchAugment | None | str = "default",
    image_size: int | None = None,
    resize: int | None = None,
) -> Splits:
    """Train / val / test of a prepared dataset.

    Kind "tensor" (embedded profile and users' small folders): :class:`TensorImageDataset`
    with ``augment`` on train only ("default" = ``BatchAugment(pad=2, flip=False)``, or the
    folder entry's own choice). Paper profile: the paper's Resize(resize)+RandomResizedCrop(
    image_size)+flip recipe for train and Resize(resize)+CenterCrop(image_size) for val/test,
    ImageNet-normalised, as :class:`amcf.feed.DeviceFeed`s (uint8 to the device, cropped and
    resized there) over the copy prepare stored (files) or the arrays (CIFAR-100); at sizes
    other than those prepared, the original files through PIL (``FileImageDataset``).
    ``image_size``/``resize`` default to the sizes prepare recorded (224/256 for the paper).
    """
    d = dataset_dir(name, prepared_dir)
    info = read_json(d / "info.json")
    data = torch.load(d / "tensors.pt", weights_only=True)
    if data.get("format") != FORMAT:
        raise DataError(f"{d / 'tensors.pt'} has format {data.get('format')!r}, expected "
                        f"{FORMAT!r}. Fix: run `amcf data prepare --only {name}` again.")
    labels, codes = data["labels"], data["split"]
    parts = {s: torch.nonzero(codes == i).flatten() for i, s in enumerate(SPLITS)}
    if augment == "default":
        augment = _default_augment(info)
    image_size = image_size or info.get("image_size", PAPER_SIZES["image_size"])
    resize = resize or info.get("resize", PAPER_SIZES["resize"])
    sets: dict[str, Any] = {}
    for s, idx in parts.items():
        if info["transform"] == "paper":
            sets[s] = _paper_split(d, info, data, s, idx, image_size, resize)
        else:
            sets[s] = TensorImageDataset(data["images"][idx], labels[idx], info["mean"],
                                         info["std"], augment if s == "train" else None)
    meta = {k: info[k] for k in ("role", "profile", "counts", "image_shape", "mean", "std",
                                 "source", "licence") if k in info}
    return Splits(name=name, train=sets["train"], val=sets["val"], test=sets["test"],
                  classes=list(info["classes"]), meta=meta)


def _paper_split(d: Path, info: dict[str, Any], data: dict[str, Any], split: str,
                 idx: torch.Tensor, image_size: int, resize: int):
    recipe = CropRecipe(size=image_size, resize=resize)
    labels = data["labels"][idx]
    mean, std, train = info["mean"], info["std"], split == "train"
    if info["kind"] == "tensor":  # arrays (CIFAR-100): resized on the device as well
        images = data["images"][idx].permute(0, 2, 3, 1).numpy()
        return DeviceFeed(images, labels, mean, std, train=train, recipe=recipe,
                          at_resize=False)
    stored = info.get("stored") or {}
    if stored.get("format") not in (None, VIEWS_FORMAT):
        raise DataError(f"{d} was prepared with an older layout ({stored.get('format')}). "
                        f"Fix: run `amcf data prepare --only {info['name']}` again.")
    if stored and (stored["resize"], stored["size"]) == (resize, image_size):
        return DeviceFeed(PackedImages(d / stored["dir"], split), labels, mean, std,
                          train=train, recipe=recipe)
    files = _manifest_ids(d)
    return FileImageDataset(d / info["root"], [files[i] for i in idx.tolist()], labels.tolist(),
                            paper_transform(train, image_size, resize))


def _default_augment(info: dict[str, Any]) -> BatchAugment | None:
    aug = info.get("augment")
    if aug is None:
        return DEFAULT_AUGMENT
    return BatchAugment(**aug) if aug else None


def _manifest_ids(d: Path) -> list[str]:
    with open(d / "manifest.csv", newline="", encoding="utf-8") as f:
        return [row["id"] for row in csv.DictReader(f)]
