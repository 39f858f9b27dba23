"""The device feed (amcf.feed) against the PIL path it replaces: the same labels, the same crop
and flip draws from the same seeds, and the same pixels up to the rounding of one resize.

"Up to rounding": a pixel (a value 0..255 of one channel, recovered from the normalised
tensor) of a training crop differs by at most 1 from PIL's, since PIL resizes in fixed point
with a uint8 intermediate and the feed in fp32 rounded once; a CIFAR-style array, resized
twice (to 256, then the crop to 224), by at most 2. Evaluation views of a prepared dataset
need no resampling and are the same bits.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amcf.datasets import _pooled_loader, iterate_batches, release_loaders
from amcf.feed import CropRecipe, DeviceFeed, resized_shape
from compendium.data.errors import DataError
from compendium.data.folder import load_entries, prepare_folder
from compendium.data.prepared import load_splits, read_info
from compendium.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ArrayImageDataset,
    FileImageDataset,
    paper_transform,
)
from compendium.data.views import INDEX_BYTES, PackedImages, stored_bytes

# photographs' shapes, one smaller than the resize (upsampled), one panoramic, one a pixel
# off square (the shorter side decides)
SIZES = [(500, 375), (375, 500), (300, 300), (200, 150), (90, 120), (1000, 300), (257, 256)]


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """A normalised (3, H, W) image back to its 0..255 values."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((x * std + mean) * 255).round().long()


def _photos(root: Path, per_class: int = 7) -> Path:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            w, h = SIZES[i % len(SIZES)]
            base = Image.fromarray(rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3),
                                                dtype=np.uint8)).resize((w, h), Image.BICUBIC)
            grain = rng.integers(-30, 30, (h, w, 3))  # fine detail, so resizing matters
            pixels = np.clip(np.asarray(base).astype(int) + grain, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A files-mode folder dataset, prepared (views stored), and the PIL path on its originals."""
    tmp = tmp_path_factory.mktemp("feed")
    root = _photos(tmp / "photos")
    [entry] = load_entries([{"name": "pets", "kind": "folder", "path": str(root),
                             "mode": "files", "test_fraction": 0.3, "val_fraction": 0.25}])
    prepare_folder(entry, tmp / "out")
    with open(tmp / "out/pets/manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    pil = {s: FileImageDataset(root, [r["id"] for r in rows if r["split"] == s],
                               [int(r["label"]) for r in rows if r["split"] == s],
                               paper_transform(s == "train"))
           for s in ("train", "val", "test")}
    return load_splits("pets", tmp / "out"), pil, tmp / "out" / "pets"


def test_prepared_views_give_the_pil_paths_pixels_and_labels(prepared):
    splits, pil, _ = prepared
    for name in ("train", "val", "test"):
        feed = getattr(splits, name)
        assert isinstance(feed, DeviceFeed) and len(feed) == len(pil[name])
        assert feed.labels.tolist() == pil[name].labels.tolist()
    # evaluation: Resize + CenterCrop stored once; no resampling left, so the same bits
    for name in ("val", "test"):
        for i in range(len(pil[name])):
            a, ya = pil[name][i]
            b, yb = getattr(splits, name)[i]
            assert torch.equal(a, b) and int(ya) == int(yb)
    # training: the same seed draws the same crop and flip; the resize rounds differently
    worst, same, total = 0, 0, 0
    for i in range(len(pil["train"])):
        for seed in range(4):
            torch.manual_seed(1000 * i + seed)
            a = pil["train"][i][0]
            torch.manual_seed(1000 * i + seed)
            b = splits.train[i][0]
            assert a.shape == b.shape == (3, 224, 224)
            diff = (_pixels(a) - _pixels(b)).abs()
            worst, same, total = max(worst, int(diff.max())), same + int((diff == 0).sum()), \
                total + diff.numel()
    assert worst <= 1
    assert same / total > 0.7  # most pixels are equal (measured: 0.8); a wrong crop is not


def test_batches_are_uint8_between_processes_and_follow_the_pil_paths_draws(prepared):
    splits, pil, _ = prepared
    loader, keys = _pooled_loader(splits.train, 4, 2, False)
    keys.start_pass(len(splits.train), True, 5)
    pixels, shapes, boxes, flips, labels = next(iter(loader))
    assert pixels.dtype == torch.uint8 and pixels.ndim == 1  # packed, no padding
    assert pixels.numel() == int(shapes.prod(dim=1).sum()) and len(labels) == 4
    release_loaders()

    passes = {}
    for name, data, workers in (("pil", pil["train"], 0), ("feed", splits.train, 0),
                                ("feed-workers", splits.train, 2)):
        g = torch.Generator().manual_seed(3)
        passes[name] = [list(iterate_batches(data, 4, train=True, generator=g,
                                             num_workers=workers)) for _ in range(2)]
    release_loaders()
    for epoch in range(2):
        for (xa, ya), (xb, yb), (xc, yc) in zip(passes["pil"][epoch], passes["feed"][epoch],
                                                passes["feed-workers"][epoch], strict=True):
            assert torch.equal(ya, yb) and torch.equal(yb, yc)  # the same order
            assert torch.equal(xb, xc)  # workers or not, the same bits
            assert int((_pixels(xa) - _pixels(xb)).abs().max()) <= 1
    assert not torch.equal(passes["feed"][0][0][0], passes["feed"][1][0][0])  # new draws


def test_arrays_resized_on_the_device_follow_the_pil_path():
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (12, 3, 32, 32), dtype=np.uint8))
    labels = torch.arange(12) % 3
    recipe = CropRecipe(size=56, resize=64)
    for train, bound in ((True, 2), (False, 1)):
        pil = ArrayImageDataset(images, labels, paper_transform(train, 56, 64))
        feed = DeviceFeed(images.permute(0, 2, 3, 1).numpy(), labels, IMAGENET_MEAN,
                          IMAGENET_STD, train=train, recipe=recipe, at_resize=False)
        for i in range(12):
            torch.manual_seed(i)
            a, ya = pil[i]
            torch.manual_seed(i)
            b, yb = feed[i]
            assert int(ya) == int(yb)
            assert int((_pixels(a) - _pixels(b)).abs().max()) <= bound


def test_stored_bytes_is_what_prepare_writes(prepared):
    _, pil, folder = prepared
    info = read_info("pets", folder.parent)
    assert info["stored"] == {"dir": "views", "format": "uint8-hwc/1", "resize": 256,
                              "size": 224}
    for name, data in pil.items():
        sizes = [Image.open(data.root / f).size for f in data.files]
        planned = sum(stored_bytes(w, h, name) for w, h in sizes)
        written = (folder / "views" / f"{name}.u8").stat().st_size
        assert planned == written + INDEX_BYTES * len(sizes)
        if name == "train":
            assert [tuple(img.shape[:2]) for img in PackedImages(folder / "views", name)] == \
                [resized_shape(h, w, 256) for w, h in sizes]


def test_a_truncated_copy_names_the_fix(prepared, tmp_path):
    _, _, folder = prepared
    broken = tmp_path / "views"
    broken.mkdir()
    for f in (folder / "views").iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    with open(broken / "train.u8", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DataError, match="interrupted preparation.*prepare"):
        PackedImages(broken, "train")


def test_a_crop_larger_than_its_resize_is_refused():
    with pytest.raises(ValueError, match="no larger than the resize"):
        CropRecipe(size=64, resize=32)
