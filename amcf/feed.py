"""Images that reach the training device as uint8 and are cropped, resized, flipped and
normalised there: the paper's recipe (``Resize(256)``, then ``RandomResizedCrop(224)`` and a
horizontal flip for training, ``CenterCrop(224)`` for evaluation) without PIL in the loop.

The host only cuts samples. A training sample's crop box and flip are drawn by the calls
torchvision's ``RandomResizedCrop`` and ``RandomHorizontalFlip`` make, from the same
per-sample seed, so they are the PIL path's draws; where the stored image already is the
recipe's ``Resize`` output (prepared once), the crop is sliced out on the host (no
resampling). A batch crosses from a DataLoader worker as one packed uint8 buffer, with no
padding. On the device each crop is resized to the output size (bilinear with antialiasing,
PIL's ``BILINEAR``), rounded to whole values as PIL's uint8 output is, flipped, and normalised
by the operations ``ToTensor`` and ``Normalize`` use.

Only the resize differs from the PIL path: PIL computes it in fixed point and stores its
horizontal pass as uint8 before the vertical one; here it is one fp32 computation, rounded
once. A pixel of a resized crop therefore differs by at most 1 (of 255) from PIL's, and by
at most 2 where the image is resized twice (a CIFAR image upsampled to ``resize`` and then
cropped); a crop or view that needs no resampling (every evaluation view of a prepared
dataset) is the same bits. ``tests/test_feed.py`` checks these bounds against the PIL path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

Box = tuple[int, int, int, int]  # top, left, height, width


@dataclass(frozen=True)
class CropRecipe:
    """The paper's geometry: ``Resize(resize)`` (shorter side), then a ``size`` crop; random
    (``RandomResizedCrop`` with ``scale`` and ``ratio``, and a flip) for training, central for
    evaluation."""

    size: int = 224
    resize: int = 256
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.size <= self.resize:
            raise ValueError(f"the crop ({self.size} px) must be at least 1 px and no larger "
                             f"than the resize before it ({self.resize} px)")


def resized_shape(height: int, width: int, shorter: int) -> tuple[int, int]:
    """The (height, width) torchvision's ``Resize(shorter)`` gives an image of this size."""
    if width <= height:
        return int(shorter * height / width), shorter
    return shorter, int(shorter * width / height)


def center_box(height: int, width: int, size: int) -> Box:
    """``CenterCrop(size)``'s box in an image of this size (at least ``size`` on each side)."""
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0)), size, size


def _random_box(height: int, width: int, recipe: CropRecipe) -> tuple[Box, bool]:
    """The crop box and flip, drawn from torch's global stream by torchvision's own calls in
    the order the PIL recipe makes them."""
    from torchvision.transforms import RandomResizedCrop

    # get_params reads only the image's height and width: an empty tensor of that size
    box = RandomResizedCrop.get_params(torch.empty((0, height, width)), recipe.scale,
                                       recipe.ratio)
    flip = bool(torch.rand(1) < 0.5) if recipe.flip else False
    return tuple(int(v) for v in box), flip


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """(N, C, h, w) float -> (N, C, *size): bilinear with antialiasing, rounded as PIL's uint8."""
    out = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False,
                                          antialias=True)
    return out.round_().clamp_(0, 255)


# A collated batch: pixels (all samples' uint8 (h, w, C) pieces, flat), shapes (B, 3),
# boxes (B, 4), flips (B,), labels (B,).
FeedBatch = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


def collate(samples: Sequence[tuple[Tensor, Box, bool, int]]) -> FeedBatch:
    """Pack samples into one uint8 buffer: what crosses from a worker process."""
    pieces = [s[0] for s in samples]
    return (torch.cat([p.reshape(-1) for p in pieces]),
            torch.tensor([tuple(p.shape) for p in pieces], dtype=torch.long),
            torch.tensor([s[1] for s in samples], dtype=torch.long),
            torch.tensor([s[2] for s in samples], dtype=torch.bool),
            torch.tensor([s[3] for s in samples], dtype=torch.long))


class DeviceFeed(Dataset):
    """Labelled uint8 images served through :class:`CropRecipe` on the training device.

    ``images[i]`` is an (H, W, C) uint8 array (C = 1 or 3; one channel is repeated to the
    three of ``mean``). ``at_resize``: the images already are ``Resize(recipe.resize)``'s
    output (a prepared copy), so the host slices the crop; otherwise (CIFAR's 32-px arrays)
    every image must have one size, and the device resizes the batch first.

    :func:`amcf.datasets.iterate_batches` feeds it through its pooled loader (host:
    :meth:`sample`, :func:`collate`; device: :meth:`to_device`); ``feed[i]`` runs the same
    code on one sample on the CPU, drawing from torch's global stream as a PIL transform does.
    """

    def __init__(self, images: Any, labels: Tensor | Sequence[int], mean: Sequence[float],
                 std: Sequence[float], *, train: bool, recipe: CropRecipe = CropRecipe(),
                 at_resize: bool = True):
        self.images = images
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        if len(self.labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(self.labels)} labels")
        if len(mean) != len(std):
            raise ValueError("mean and std need one value per channel each")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.train = train
        self.recipe = recipe
        self.at_resize = at_resize
        self._on_device: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def __len__(self) -> int:
        return len(self.labels)

    def _geometry(self, height: int, width: int) -> tuple[int, int]:
        """The size of the image the recipe crops from: after its Resize."""
        return (height, width) if self.at_resize else resized_shape(height, width,
                                                                    self.recipe.resize)

    def sample(self, i: int, seed: int | None = None) -> tuple[Tensor, Box, bool, int]:
        """Image ``i``'s uint8 piece, crop box, flip and label (host side, e.g. in a worker).

        A training sample's draws come from ``seed`` (torch's CPU stream seeded with it, the
        caller's stream left as it was) or, without one, from the global stream."""
        image = np.asarray(self.images[i])
        if image.ndim != 3 or image.dtype != np.uint8:
            raise ValueError(f"image {i} must be a uint8 (H, W, C) array, got {image.dtype} "
                             f"{image.shape}")
        height, width = self._geometry(*image.shape[:2])
        if not self.train:
            box, flip = center_box(height, width, self.recipe.size), False
        elif seed is None:
            box, flip = _random_box(height, width, self.recipe)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.default_generator.manual_seed(seed)
                box, flip = _random_box(height, width, self.recipe)
        if self.at_resize:
            top, left, h, w = box
            image = image[top:top + h, left:left + w]
            box = (0, 0, h, w)
        return torch.from_numpy(np.ascontiguousarray(image)), box, flip, int(self.labels[i])

    collate = staticmethod(collate)

    def to_device(self, batch: FeedBatch, device: torch.device | str) -> tuple[Tensor, Tensor]:
        """A collated batch -> (normalised float images (B, C, size, size), labels) on
        ``device``."""
        device = torch.device(device)
        pixels, shapes, boxes, flips, labels = batch
        pixels = pixels.to(device, non_blocking=True)
        size = self.recipe.size
        pieces, offset = [], 0
        for h, w, c in shapes.tolist():
            pieces.append(pixels[offset:offset + h * w * c].view(1, h, w, c).permute(0, 3, 1, 2))
            offset += h * w * c
        if not self.at_resize:
            # one size for all (arrays): the recipe's Resize on the whole batch, then the boxes
            grown = _resize(torch.cat(pieces).float().contiguous(),
                            self._geometry(*pieces[0].shape[2:]))
            pieces = [grown[b:b + 1, :, t:t + h, l:l + w]
                      for b, (t, l, h, w) in enumerate(boxes.tolist())]
        channels = pieces[0].shape[1]
        out = torch.empty((len(pieces), channels, size, size), device=device)
        for b, (piece, flip) in enumerate(zip(pieces, flips.tolist(), strict=True)):
            image = piece[0] if piece.shape[2:] == (size, size) else _resize(
                piece.float().contiguous(), (size, size))[0]
            out[b] = image.flip(-1) if flip else image
        if channels == 1 and self.mean.shape[1] == 3:  # a grey image, converted to RGB by PIL
            out = out.expand(-1, 3, -1, -1)
        mean, std = self._stats(device)
        # ToTensor's division and Normalize's subtraction and division, in that order
        out = out.div(255.0)
        out = (out - mean) / std
        return out, labels.to(device, non_blocking=True)

    def _stats(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """mean and std on ``device``, copied there once (a blocking copy every batch would
        hold the host until the device has finished the previous step)."""
        if device not in self._on_device:
            self._on_device[device] = (self.mean.to(device), self.std.to(device))
        return self._on_device[device]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_on_device": {}}  # a worker needs no device copies

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        x, y = self.to_device(collate([self.sample(i)]), "cpu")
        return x[0], y[0]
