"""The paper profile's datasets: images read on access, with the paper's 224-px recipe."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision import transforms as T

from compendium.data.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The paper's recipe starts with Resize(256): images are stored once at that size.
STORED_SHORTER_SIDE = 256


def paper_transform(train: bool, image_size: int = 224, resize: int = 256) -> Callable:
    """Train: Resize(256), RandomResizedCrop(224), flip; eval: Resize(256), CenterCrop(224);
    both ImageNet-normalised (Feng et al. 2024, as in the released script)."""
    if train:
        steps = [T.Resize(resize), T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
    else:
        steps = [T.Resize(resize), T.CenterCrop(image_size)]
    return T.Compose([*steps, T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class FileImageDataset(Dataset):
    """Images named by paths relative to ``root``, decoded to RGB on access.

    ``ids`` name the raw images (the manifest's ids) when ``files`` are copies stored at
    prepare time; by default they are ``files``.
    """

    def __init__(self, root: Path, files: Sequence[str], labels: Sequence[int],
                 transform: Callable, ids: Sequence[str] | None = None):
        self.root = Path(root)
        self.files = list(files)
        self.ids = list(ids) if ids is not None else self.files
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        path = self.root / self.files[i]
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise DataError(f"unreadable image {path}: {exc}. Fix: run `amcf data prepare` "
                            "again (it re-extracts the archive).") from exc
        return self.transform(rgb), self.labels[i]


class ArrayImageDataset(Dataset):
    """A uint8 (N, C, H, W) tensor served through PIL transforms (CIFAR-100 at 224 px)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable):
        self.images = images
        self.labels = labels.long()
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        arr = self.images[i].permute(1, 2, 0).numpy()
        img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).convert("RGB")
        return self.transform(img), self.labels[i]


def stored_name(index: int) -> str:
    """File name of the ``index``-th image (manifest order) in a prepared ``images/`` copy."""
    return f"{index:06d}.png"


# What the disk plan (compendium.data.disk) assumes a stored copy weighs: lossless PNG bytes per
# raw RGB byte, by what the images hold. Measured with measure_compressibility, through this
# module's own writer: 4 photographs (scikit-learn's china and flower, matplotlib's
# grace_hopper, TeX Live's pic.jpg) 0.51-0.61; the same photos first shrunk to 72 px, the
# Visual Decathlon's size, 0.34-0.38; 200 Omniglot characters at 72 px 0.046. Rounded up, so
# that the plan errs on the large side (tests/test_disk_plan.py measures the photos again).
COMPRESSIBILITY = {"photo": 0.62, "upscaled": 0.40, "strokes": 0.05}


def stored_size(width: int, height: int, shorter_side: int = STORED_SHORTER_SIDE
                ) -> tuple[int, int]:
    """(width, height) of an image after ``T.Resize(shorter_side)`` (torchvision's rule)."""
    short, long = sorted((width, height))
    new_long = int(shorter_side * long / short)
    return (shorter_side, new_long) if width <= height else (new_long, shorter_side)


def stored_image_bytes(width: int, height: int, content: str = "photo") -> int:
    """About how many bytes :func:`store_resized` writes for one ``width`` x ``height`` image
    holding ``content`` (a key of COMPRESSIBILITY): exact in pixels, estimated in PNG bytes."""
    w, h = stored_size(width, height)
    return int(w * h * 3 * COMPRESSIBILITY[content])


def measure_compressibility(images: Iterable[Image.Image]) -> float:
    """Bytes written per raw RGB byte when ``images`` are stored as :func:`store_resized`
    stores them: how the constants above were measured, and how a test checks them."""
    written = raw = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, img in enumerate(images):
            target = Path(tmp) / stored_name(i)
            w, h = _store_one(img.convert("RGB"), target, T.Resize(STORED_SHORTER_SIDE))
            written += target.stat().st_size
            raw += w * h * 3
    return written / raw


def _store_one(rgb: Image.Image, target: Path, resize: Callable) -> tuple[int, int]:
    partial = target.with_suffix(".part.png")
    small = resize(rgb)
    small.save(partial, compress_level=1)
    partial.replace(target)
    return small.size


def store_resized(root: Path, files: Sequence[str], dest: Path,
                  shorter_side: int = STORED_SHORTER_SIDE) -> None:
    """Decode each image once and store it as ``Resize(shorter_side)`` would give it.

    Lossless PNG: the recipe's own Resize then finds the size already right and leaves the
    pixels as they are, so training reads exactly what resizing the original every epoch
    gives, without decoding full-size JPEGs every epoch.
    """
    dest.mkdir(parents=True, exist_ok=True)
    resize = T.Resize(shorter_side)
    for i, rel in enumerate(files):
        path = Path(root) / rel
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB")
        except (OSError, UnidentifiedImageError, SyntaxError) as exc:
            raise DataError(f"unreadable image {path}: {exc}. Fix: delete {root} and the "
                            "archive in data/, then fetch and prepare again.") from exc
        _store_one(rgb, dest / stored_name(i), resize)
