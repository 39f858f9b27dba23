"""In-memory image datasets and the trainer's fast batch path.

Small datasets are decoded once into a uint8 tensor (N, C, H, W). Training on them does not
go through a per-sample ``DataLoader``: :func:`iterate_batches` indexes the tensor, applies
:class:`BatchAugment` to the whole batch at once and normalises, on the training device.
On a 2-core CPU this removes most of the per-step overhead for 28-px images.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from amcf.feed import DeviceFeed


@dataclass(frozen=True)
class BatchAugment:
    """Random translation by up to ``pad`` pixels (zero padding) and optional horizontal flip."""

    pad: int = 0
    flip: bool = False

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        n, _, h, w = x.shape
        if self.flip:
            mask = torch.rand(n, generator=generator) < 0.5
            x = torch.where(mask.view(n, 1, 1, 1).to(x.device), x.flip(-1), x)
        if self.pad > 0:
            p = self.pad
            padded = torch.nn.functional.pad(x, (p, p, p, p))
            dy = torch.randint(0, 2 * p + 1, (n,), generator=generator)
            dx = torch.randint(0, 2 * p + 1, (n,), generator=generator)
            rows = (dy.view(n, 1) + torch.arange(h)).to(x.device)  # (n, h)
            cols = (dx.view(n, 1) + torch.arange(w)).to(x.device)  # (n, w)
            idx_n = torch.arange(n, device=x.device).view(n, 1, 1)
            # gather each sample's crop: (n, h, w, C) -> (n, C, h, w)
            x = padded.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)]
            x = x.permute(0, 3, 1, 2).contiguous()
        return x


class TensorImageDataset(Dataset):
    """Images held as one uint8 tensor, normalised per channel on access."""

    def __init__(
        self,
        images: Tensor,
        labels: Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        augment: BatchAugment | None = None,
    ):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} "
                             f"{tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got "
                             f"{tuple(labels.shape)}")
        if len(mean) != images.shape[1] or len(std) != images.shape[1]:
            raise ValueError("mean and std need one value per image channel")
        self.images = images
        self.labels = labels.long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.augment = augment

    def __len__(self) -> int:
        return self.images.shape[0]

    def normalise(self, x_uint8: Tensor) -> Tensor:
        x = x_uint8.float().div_(255.0)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.normalise(self.images[i : i + 1])[0], self.labels[i]

    def with_augment(self, augment: BatchAugment | None) -> TensorImageDataset:
        return TensorImageDataset(self.images, self.labels, self.mean.flatten().tolist(),
                                  self.std.flatten().tolist(), augment)


@dataclass
class Splits:
    """A target (or source) dataset ready for training: train / val / test and class names.

    ``val`` is carved from the training data and is what model selection and the layer
    search see; ``test`` is touched only for reporting.
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    classes: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_chans(self) -> int:
        x, _ = self.train[0]
        return int(x.shape[0])


def iterate_batches(
    dataset: Dataset,
    batch_size: int,
    *,
    train: bool,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield (x, y) batches on ``device``: shuffled and augmented when ``train``.

    A :class:`TensorImageDataset` takes the fast in-memory path; any other dataset goes
    through a pooled ``DataLoader`` with persistent workers, whose order and per-sample
    augmentation seeds come from one draw of ``generator`` (so runs repeat, whatever the
    worker count). A :class:`amcf.feed.DeviceFeed`'s workers yield uint8 batches that the
    feed finishes on ``device``; its evaluation passes run without workers (they copy
    prepared views and decode nothing, so workers would add only shared memory).
    """
    device = torch.device(device)
    if isinstance(dataset, TensorImageDataset):
        n = len(dataset)
        order = torch.randperm(n, generator=generator) if train else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            x = dataset.images[idx].to(device, non_blocking=True)
            if train and dataset.augment is not None:
                x = dataset.augment(x, generator)
            yield dataset.normalise(x), dataset.labels[idx].to(device, non_blocking=True)
        return
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if train else 0
    feed = isinstance(dataset, DeviceFeed)
    workers = 0 if feed and not train else num_workers
    loader, keys = _pooled_loader(dataset, batch_size, workers, device.type == "cuda")
    keys.start_pass(len(dataset), train, seed)
    for batch in loader:
        if feed:
            yield dataset.to_device(batch, device)
        else:
            x, y = batch
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


class _PassKeys(Sampler):
    """The (index, seed) pairs of one pass: the order, and each sample's augmentation seed.

    Both come from the pass's seed alone, so a batch's pixels do not depend on how many
    workers decode it, nor on whether the workers outlive the pass.
    """

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []

    def start_pass(self, n: int, train: bool, seed: int) -> None:
        if not train:
            self.keys = [(i, 0) for i in range(n)]
            return
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=g).tolist()
        seeds = torch.randint(0, 2**62, (n,), generator=g).tolist()
        self.keys = list(zip(order, seeds, strict=True))

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self):
        return iter(list(self.keys))


class _SeededSamples(Dataset):
    """Runs ``base[i]`` with torch's CPU random stream seeded for that sample (the
    transforms' draws), leaving the caller's stream as it was; a :class:`DeviceFeed`'s
    host-side sample is seeded the same way."""

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]):
        i, seed = key
        if isinstance(self.base, DeviceFeed):
            return self.base.sample(i, seed)
        with torch.random.fork_rng(devices=[]):
            # the CPU stream only: torch.manual_seed would also reseed every CUDA device
            torch.default_generator.manual_seed(seed)
            return self.base[i]


# Loaders kept alive between passes, so their workers start once per run (or search), not
# once per split and epoch. A few entries cover a run's train, val and test splits. A pooled
# loader serves one pass at a time: a new pass over the same dataset and batch size ends
# the previous one (an abandoned pass is drained by the DataLoader itself).
_POOL: OrderedDict[tuple, tuple[Dataset, DataLoader, _PassKeys]] = OrderedDict()
_POOL_SIZE = 4


def _pooled_loader(dataset: Dataset, batch_size: int, num_workers: int,
                   pin: bool) -> tuple[DataLoader, _PassKeys]:
    key = (id(dataset), batch_size, num_workers, pin)
    if key in _POOL and _POOL[key][0] is dataset:
        _POOL.move_to_end(key)
        return _POOL[key][1], _POOL[key][2]
    keys = _PassKeys()
    # its own generator: the workers' base seed is drawn from it, not from the caller's
    # stream (each sample is seeded anyway)
    loader = DataLoader(_SeededSamples(dataset), batch_size=batch_size, sampler=keys,
                        num_workers=num_workers, pin_memory=pin,
                        collate_fn=dataset.collate if isinstance(dataset, DeviceFeed) else None,
                        persistent_workers=num_workers > 0,
                        generator=torch.Generator().manual_seed(0))
    _POOL[key] = (dataset, loader, keys)  # the dataset is held so its id is not reused
    while len(_POOL) > _POOL_SIZE:
        _POOL.popitem(last=False)
    return loader, keys


def release_loaders() -> None:
    """Stop the pooled loaders' worker processes (they also stop when the process exits)."""
    _POOL.clear()
