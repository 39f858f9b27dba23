"""The prepared uint8 copy of a files-mode dataset: what training reads instead of image files.

Each used image is decoded once at prepare time and stored as raw uint8 (H, W, 3) pixels in
``<prepared>/views/``: a training image as the recipe's ``Resize`` gives it (shorter side
``resize``), from which the device cuts and resizes a random crop every epoch; a validation or
test image as its fixed view (``Resize`` then ``CenterCrop(size)``), read as it is. One file of
pixels per split (``<split>.u8``, images in manifest order) and its index (``<split>.idx.npy``:
offset, height and width of each image). The files are memory-mapped: nothing is decoded while
training, and concurrent trainings on one machine share the pages.

:func:`stored_bytes` is the size of one image's stored copy, for planning the disk.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from amcf.feed import resized_shape
from amcf.io import atomic_path
from compendium.data.errors import DataError
from compendium.data.splits import SPLITS

DIR = "views"
FORMAT = "uint8-hwc/1"
CHANNELS = 3
INDEX_BYTES = 3 * 8  # offset, height, width (int64) per image


def stored_bytes(width: int, height: int, split: str, *, resize: int = 256,
                 size: int = 224) -> int:
    """Bytes the prepared copy holds for one image of ``width`` x ``height`` in ``split``."""
    if split == "train":
        h, w = resized_shape(height, width, resize)
        return h * w * CHANNELS + INDEX_BYTES
    return size * size * CHANNELS + INDEX_BYTES


def view_pixels(path: Path, train: bool, resize: int, size: int) -> np.ndarray:
    """One image as stored: RGB, ``Resize(resize)`` (PIL, as the paper's transform), and for
    evaluation ``CenterCrop(size)``; uint8 (H, W, 3)."""
    from torchvision.transforms import CenterCrop, Resize

    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise DataError(f"unreadable image {path}: {exc}. Fix: delete {path.parent} and the "
                        "archive in data/, then fetch and prepare again.") from exc
    out = Resize(resize)(rgb)
    if not train:
        out = CenterCrop(size)(out)
    return np.asarray(out, dtype=np.uint8)


def write_views(root: Path, files: Sequence[str], split: Sequence[str], dest: Path, *,
                resize: int, size: int) -> dict[str, Any]:
    """Store every image of ``files`` (relative to ``root``; ``split`` names each one's split)
    under ``dest``; returns what ``info.json`` records about the copy."""
    if not 1 <= size <= resize:
        raise DataError(f"the crop ({size} px) must be no larger than the resize before it "
                        f"({resize} px)")
    dest.mkdir(parents=True, exist_ok=True)
    index: dict[str, list[tuple[int, int, int]]] = {s: [] for s in SPLITS}
    with contextlib.ExitStack() as stack:
        temps = {s: stack.enter_context(atomic_path(dest / f"{s}.u8")) for s in SPLITS}
        out = {s: stack.enter_context(open(temps[s], "wb")) for s in SPLITS}
        offsets = dict.fromkeys(SPLITS, 0)
        for rel, s in zip(files, split, strict=True):
            pixels = view_pixels(Path(root) / rel, s == "train", resize, size)
            out[s].write(pixels.tobytes())
            index[s].append((offsets[s], *pixels.shape[:2]))
            offsets[s] += pixels.nbytes
        for s in SPLITS:
            out[s].close()  # before the atomic rename at the end of the block
            with atomic_path(dest / f"{s}.idx.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, np.asarray(index[s], dtype=np.int64).reshape(-1, 3))
    return {"dir": DIR, "format": FORMAT, "resize": resize, "size": size}


class PackedImages:
    """The images of one split of a prepared copy: ``images[i]`` is an (H, W, 3) uint8 array
    read from the memory-mapped file (opened in each process on first use)."""

    def __init__(self, folder: Path, split: str):
        self.path = Path(folder) / f"{split}.u8"
        index_path = Path(folder) / f"{split}.idx.npy"
        fix = "Fix: run `amcf data prepare` (or its prepare@ stage) for this dataset again."
        if not self.path.is_file() or not index_path.is_file():
            raise DataError(f"{self.path} or its index is missing. {fix}")
        self.index = np.load(index_path)
        end = int(self.index[-1, 0] + self.index[-1, 1] * self.index[-1, 2] * CHANNELS) if len(
            self.index) else 0
        if end != self.path.stat().st_size:
            raise DataError(f"{self.path} holds {self.path.stat().st_size} bytes, its index "
                            f"{end}: an interrupted preparation. {fix}")
        self._pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._pixels is None:
            # copy-on-write: writable arrays (torch takes them without a warning), while the
            # file itself is never written
            self._pixels = np.memmap(self.path, dtype=np.uint8, mode="c")
        offset, height, width = (int(v) for v in self.index[i])
        return self._pixels[offset:offset + height * width * CHANNELS].reshape(
            height, width, CHANNELS)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pixels": None}  # a worker maps the file itself
