"""Users' own data: an ImageFolder directory becomes a dataset through a few lines of config.

In ``params.yaml`` (or any YAML file passed to ``amcf data prepare --params``)::

    datasets:
      - name: my-leaves          # used as the dataset name everywhere
        kind: folder
        path: data/my-leaves     # class subfolders, optionally inside train/ val/ test/
        image_size: 28           # decoded once to image_size x image_size
        channels: 1              # 1 (grey, the embedded profile) or 3

Without ``train/``/``test/`` subfolders the images are split per class with a seeded,
stratified draw (``test_fraction`` of each class for test, ``val_fraction`` of the rest for
val); with them, those splits are kept and val is carved from train unless ``val/`` exists.
``mode: files`` keeps the images as files read with the paper's 224-px recipe instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from PIL import ImageOps
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compendium.data.cards import per_class_counts, render_card
from compendium.data.disk import check_copy
from compendium.data.errors import DataError
from compendium.data.images import open_image
from compendium.data.paper_profile.common import check_images
from compendium.data.prepared import Prepared, write_prepared
from compendium.data.splits import carve_val, counts, stratified_split
from compendium.data.transforms import IMAGENET_MEAN, IMAGENET_STD


class AugmentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pad: int = Field(2, ge=0, le=16)
    flip: bool = False


class FolderDataset(BaseModel):
    """One ``kind: folder`` dataset entry."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: Literal["folder"]
    path: Path
    role: Literal["source", "target"] = "target"
    mode: Literal["tensor", "files"] = "tensor"
    image_size: int = Field(28, ge=8, le=512)
    channels: Literal[1, 3] = 1
    invert: bool = False  # dark strokes on a light ground -> the embedded convention
    test_fraction: float = Field(0.3, gt=0, lt=1)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    augment: AugmentSpec | None = AugmentSpec()
    licence: str = "not stated (your own data)"
    citation: str = ""
    title: str = ""


def load_entries(params: str | Path | dict | list) -> list[FolderDataset]:
    """Validated dataset entries from a YAML file (key ``datasets``, or a list) or objects."""
    raw: Any = params
    if isinstance(params, str | Path):
        raw = yaml.safe_load(Path(params).read_text(encoding="utf-8"))
    if isinstance(raw, dict):
        raw = raw.get("datasets", [])
    entries = []
    for i, item in enumerate(raw or []):
        try:
            entries.append(FolderDataset.model_validate(item))
        except ValidationError as exc:
            label = item.get("name", "?") if isinstance(item, dict) else repr(item)
            raise DataError(f"dataset entry #{i} ({label}) is invalid:\n{exc}\nFix: see "
                            "compendium.data.folder for the fields.") from exc
    return entries


def _image_extensions() -> tuple[str, ...]:
    # torchvision's list, loaded when a folder is scanned: the other stages never need it
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return IMG_EXTENSIONS


def _images_in(folder: Path) -> list[Path]:
    extensions = _image_extensions()
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in extensions)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def scan(entry: FolderDataset) -> tuple[list[str], list[Path], np.ndarray, np.ndarray]:
    """Classes, image paths, labels and split of a folder entry."""
    root = entry.path
    if not root.is_dir():
        raise DataError(f"dataset {entry.name!r}: folder {root} does not exist. Fix: set "
                        "`path` to a folder of class subfolders (or of train/ and test/).")
    has_split = (root / "train").is_dir()
    parts = [s for s in ("train", "val", "test") if (root / s).is_dir()] if has_split else [""]
    if has_split and "test" not in parts:
        raise DataError(f"dataset {entry.name!r}: {root} has train/ but no test/. Fix: add a "
                        "test/ folder, or put the class folders directly in the folder.")
    base = root / parts[0] if has_split else root
    classes = [p.name for p in _class_dirs(base)]
    if len(classes) < 2:
        raise DataError(f"dataset {entry.name!r}: {base} holds {len(classes)} class folder(s); "
                        "at least 2 are needed (one subfolder of images per class).")
    files, labels, official = [], [], []
    for part in parts:
        for cdir in _class_dirs(root / part):
            if cdir.name not in classes:
                raise DataError(f"dataset {entry.name!r}: class {cdir.name!r} in {root / part} "
                                f"is not a class of {base}. Fix: use the same class folders.")
            imgs = _images_in(cdir)
            files += imgs
            labels += [classes.index(cdir.name)] * len(imgs)
            official += [part or "train"] * len(imgs)
    for c, name in enumerate(classes):
        if c not in labels:
            raise DataError(f"dataset {entry.name!r}: class folder {base / name} has no images "
                            f"({', '.join(sorted(_image_extensions()))}).")
    labels_arr = np.array(labels)
    if has_split:
        split = np.array(official, dtype=object)
        if "val" not in parts:
            split = carve_val(labels_arr, split, val=entry.val_fraction, seed=entry.seed,
                              dataset=entry.name)
    else:
        split = stratified_split(labels_arr, test=entry.test_fraction, val=entry.val_fraction,
                                 seed=entry.seed, classes=classes, dataset=entry.name)
    _refuse_missing_classes(entry, classes, labels_arr, split)
    empty = [s for s, n in counts(split).items() if n == 0]
    if empty:
        raise DataError(f"dataset {entry.name!r}: split(s) {empty} would be empty with "
                        f"{len(files)} images. Fix: add images or change test_fraction / "
                        "val_fraction.")
    return classes, files, labels_arr, split


def _refuse_missing_classes(entry: FolderDataset, classes: list[str], labels: np.ndarray,
                            split: np.ndarray) -> None:
    """A class too small to appear in every split would vanish from val or test silently."""
    for c, name in enumerate(classes):
        mine = split[labels == c]
        absent = [s for s in ("train", "val", "test") if not (mine == s).any()]
        if absent:
            raise DataError(
                f"dataset {entry.name!r}: class {name!r} has {int((labels == c).sum())} "
                f"image(s), too few to appear in {' and '.join(absent)} (test_fraction "
                f"{entry.test_fraction}, val_fraction {entry.val_fraction}). Fix: add images "
                f"to {entry.path / name} (about {_images_needed(entry)} or more), or remove "
                "that class folder")


def _images_needed(entry: FolderDataset) -> int:
    # the smallest n with round(n * test) >= 1 and round((n - test) * val) >= 1 and a train
    for n in range(3, 1000):
        n_test = round(n * entry.test_fraction)
        n_val = round((n - n_test) * entry.val_fraction)
        if n_test >= 1 and n_val >= 1 and n - n_test - n_val >= 1:
            return n
    return 1000


def decode(path: Path, entry: FolderDataset) -> np.ndarray:
    img = open_image(path.read_bytes(), what=str(path))
    img = img.convert("L" if entry.channels == 1 else "RGB")
    if entry.invert:
        img = ImageOps.invert(img)
    img = ImageOps.fit(img, (entry.image_size, entry.image_size))
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if entry.channels == 1 else arr.transpose(2, 0, 1)


def _how(entry: FolderDataset) -> str:
    if (entry.path / "train").is_dir():
        return "as given by its train/val/test folders"
    return "per class with a seeded stratified draw"


def prepare_folder(entry: FolderDataset, out_root: str | Path) -> Path:
    """Decode (or list) a folder entry into ``out_root/<name>/``, like a registered dataset."""
    classes, files, labels, split = scan(entry)
    root = entry.path.resolve()
    ids = [str(p.resolve().relative_to(root)) for p in files]
    if entry.mode == "tensor":
        used = [i for i, s in enumerate(split) if s]
        images = np.zeros((len(files), entry.channels, entry.image_size, entry.image_size),
                          dtype=np.uint8)
        for i in used:
            images[i] = decode(files[i], entry)
        prep = Prepared(classes=classes, labels=labels, ids=ids, split=split, images=images,
                        mean=(0.5,) * entry.channels, std=(0.5,) * entry.channels)
    else:
        sizes = check_images(root, ids)
        prep = Prepared(classes=classes, labels=labels, ids=ids, split=split, root=root,
                        transform="paper", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                        image_sizes=sizes)
    info = {"name": entry.name, "title": entry.title or f"Images of folder {entry.path}",
            "role": entry.role, "profile": "folder", "source": str(entry.path),
            "licence": entry.licence, "citation": entry.citation, "seed": entry.seed,
            "augment": entry.augment.model_dump() if entry.augment else {},
            "reasoning": f"Your folder, split {_how(entry)} (test_fraction "
                         f"{entry.test_fraction}, val_fraction "
                         f"{entry.val_fraction} of the rest).",
            "inputs": {}}
    card = {**info, "classes": classes, "counts": counts(split),
            "image_shape": None if prep.images is None else list(prep.images.shape[1:]),
            "mean": list(prep.mean), "std": list(prep.std)}
    check_copy(prep, Path(out_root) / entry.name, entry.name)
    return write_prepared(Path(out_root) / entry.name, info, prep,
                          render_card(card, per_class_counts(prep)))
