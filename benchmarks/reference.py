"""The yardstick: the authors' training loop and search, written from the method description.

Not part of ``amcf``. It does what the released script (``AMCF.py``) does, so ``amcf bench``
can say how much faster the compendium is on the same models, data, seed and steps:

- the data loaders are built once, before the search, and serve every fitness call and the
  final run; they are given no ``num_workers``, so no worker process ever starts and every
  image is decoded from its file, in this process, each time a batch draws it;
- full precision (fp32), no channels-last, no compile;
- every batch: the loss and the predictions are copied to the host and scored with
  scikit-learn (``accuracy_score``), as the script logs its running accuracy;
- every fitness call reseeds and builds all K models again from their weight files;
- the swarm has no memo: a repeated scheme is trained again from scratch.

Where it departs from the script, it does so on purpose, so that both loops compute the same
numbers and the comparison can check it:

- the fitness is scored on the validation split (the script scored it on test, a fault this
  project does not copy), so there is a third loader, for validation, built with the other
  two;
- the batch order and the pad-and-crop draws come from one generator, reseeded for every
  training, in ``amcf``'s order (the script drew them from the OS);
- the augmentation runs on the collated batch (``amcf``'s ``BatchAugment``), where the script
  transforms each image on its own; if anything this is faster than the script, so the
  measured speed-up is a lower bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import accuracy_score
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from amcf.datasets import BatchAugment, TensorImageDataset


class ImageFiles(Dataset):
    """Image files decoded with PIL on every access, as uint8 (C, H, W) tensors."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], channels: int):
        self.paths = list(paths)
        self.labels = [int(y) for y in labels]
        self.mode = "L" if channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        with Image.open(self.paths[i]) as img:
            arr = np.asarray(img.convert(self.mode), dtype=np.uint8)
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return torch.from_numpy(arr.copy()), self.labels[i]


def write_image_files(dataset: TensorImageDataset, folder: Path) -> ImageFiles:
    """Store a tensor split as lossless PNG files once, so the reference decodes real files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(len(dataset)):
        arr = dataset.images[i].numpy()
        img = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
        path = folder / f"{i:06d}.png"
        img.save(path)
        paths.append(path)
    return ImageFiles(paths, dataset.labels.tolist(), dataset.images.shape[1])


@dataclass
class FileSplits:
    """train / val / test as files, with the normalisation and augmentation of the target."""

    train: ImageFiles
    val: ImageFiles
    test: ImageFiles
    num_classes: int
    in_chans: int
    mean: Tensor
    std: Tensor
    augment: BatchAugment | None


def file_splits(splits: Any, folder: Path) -> FileSplits:
    """Write a tensor target (``compendium.data.Splits`` of TensorImageDatasets) as image files."""
    train = splits.train
    return FileSplits(
        train=write_image_files(train, folder / "train"),
        val=write_image_files(splits.val, folder / "val"),
        test=write_image_files(splits.test, folder / "test"),
        num_classes=splits.num_classes, in_chans=splits.in_chans,
        mean=train.mean.clone(), std=train.std.clone(), augment=train.augment)


class _Permutation(Sampler[int]):
    """A shuffle drawn from the loop's generator when an epoch starts (amcf draws the same)."""

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.generator = n, generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def authors_loss(logits: Sequence[Tensor], y: Tensor, lam: float) -> Tensor:
    """The MC-loss as the script writes it: CE as -sum(onehot * log(softmax + 1e-8)) / B,
    plus lam * mean over the batch of (1/K) sum_j ||z_j - zbar||_2 (zbar not detached)."""
    onehot = F.one_hot(y, logits[0].shape[1]).float()
    ce = sum(-(onehot * torch.log(F.softmax(z, dim=1) + 1e-8)).sum() / y.shape[0]
             for z in logits)
    if len(logits) == 1 or lam == 0:
        return ce
    z = torch.stack(list(logits))
    zbar = z.mean(dim=0, keepdim=True)
    return ce + lam * (z - zbar).norm(dim=-1).mean(dim=0).mean()


@dataclass
class Recipe:
    """The settings the reference shares with amcf's TrainConfig (SGD + StepLR)."""

    epochs: int = 5
    batch_size: int = 64
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    step_size: int = 30
    gamma: float = 0.1
    seed: int = 0
    eval_batch_size: int = 64

    @classmethod
    def from_config(cls, config: Any) -> Recipe:
        keys = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "step_size", "gamma",
                "seed")
        return cls(**{k: getattr(config, k) for k in keys}, eval_batch_size=config.batch_size)


@dataclass
class Timings:
    train_s: float = 0.0
    train_images: int = 0
    eval_s: float = 0.0
    eval_images: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    first_loss: float | None = None


class ReferenceLoop:
    """Train K models with the MC-loss the way the authors' script does (see module doc).

    One loop is one run of the script: its loaders are built here, once, and every training
    it does (each fitness call of a search, a final run) draws its batches from them.
    """

    def __init__(self, data: FileSplits, lam: float, recipe: Recipe,
                 device: torch.device | str = "cpu"):
        self.data, self.lam, self.recipe = data, lam, recipe
        self.device = torch.device(device)
        self.generator = torch.Generator()  # reseeded by every training
        self.loaders = {
            "train": DataLoader(data.train, batch_size=recipe.batch_size,
                                sampler=_Permutation(len(data.train), self.generator)),
            "val": DataLoader(data.val, batch_size=recipe.eval_batch_size),
            "test": DataLoader(data.test, batch_size=recipe.eval_batch_size),
        }

    def _inputs(self, x: Tensor, generator: torch.Generator | None) -> Tensor:
        x = x.to(self.device)
        if generator is not None and self.data.augment is not None:
            x = self.data.augment(x, generator)
        x = x.float().div_(255.0)
        return (x - self.data.mean.to(x.device)) / self.data.std.to(x.device)

    def train(self, models: list[nn.Module], *, eval_test: bool = True,
              max_steps: int | None = None) -> Timings:
        r, t = self.recipe, Timings()
        torch.manual_seed(r.seed)
        for m in models:
            m.to(self.device)
        opts = [torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=r.lr,
                                momentum=r.momentum, weight_decay=r.weight_decay)
                for m in models]
        scheds = [torch.optim.lr_scheduler.StepLR(o, r.step_size, r.gamma) for o in opts]
        generator = self.generator.manual_seed(r.seed)
        steps = 0
        for epoch in range(1, r.epochs + 1):
            for m in models:
                m.train()
            start = time.perf_counter()
            correct = seen = 0
            running = 0.0
            for x, y in self.loaders["train"]:
                x, y = self._inputs(x, generator), y.to(self.device)
                logits = [m(x) for m in models]
                loss = authors_loss(logits, y, self.lam)
                for o in opts:
                    o.zero_grad()
                loss.backward()
                for o in opts:
                    o.step()
                if t.first_loss is None:
                    t.first_loss = loss.item()
                running += loss.item() * y.shape[0]
                fused = torch.stack(logits).sum(0).argmax(1)
                correct += accuracy_score(y.cpu().numpy(), fused.detach().cpu().numpy(),
                                          normalize=False)
                seen += y.shape[0]
                steps += 1
                if max_steps is not None and steps >= max_steps:
                    break
            t.train_s += time.perf_counter() - start
            t.train_images += seen
            for s in scheds:
                s.step()
            row = {"epoch": epoch, "train_loss": running / max(seen, 1),
                   "train_acc": correct / max(seen, 1)}
            row["val_acc"] = self._evaluate(models, "val", t)
            if eval_test:
                row["test_acc"] = self._evaluate(models, "test", t)
            t.history.append(row)
            if max_steps is not None and steps >= max_steps:
                break
        return t

    def _evaluate(self, models: list[nn.Module], split: str, t: Timings) -> float:
        start = time.perf_counter()
        loader = self.loaders[split]
        for m in models:
            m.eval()
        correct = 0
        with torch.no_grad():
            for x, y in loader:
                logits = torch.stack([m(self._inputs(x, None)) for m in models])
                correct += accuracy_score(y.numpy(), logits.sum(0).argmax(1).cpu().numpy(),
                                          normalize=False)
        for m in models:
            m.train()
        t.eval_s += time.perf_counter() - start
        t.eval_images += len(loader.dataset)
        return correct / len(loader.dataset)


Build = Callable[[], list[nn.Module]]  # a fresh build of the K pretrained models
Freeze = Callable[[nn.Module, int], Any]


def reference_fitness(loop: ReferenceLoop, build: Build, freeze: Freeze
                      ) -> Callable[[tuple[int, ...]], float]:
    """The script's fitness: reseed, build the K models from disk, freeze, train, best val."""

    def fitness(scheme: tuple[int, ...]) -> float:
        torch.manual_seed(loop.recipe.seed)
        models = build()
        for m, k in zip(models, scheme, strict=True):
            freeze(m, int(k))
        timings = loop.train(models, eval_test=False)
        return max(row["val_acc"] for row in timings.history)

    return fitness


@dataclass
class ReferenceSearch:
    best: tuple[int, ...]
    best_fitness: float
    calls: int
    trainings: int
    history: list[dict[str, Any]]


def reference_pso(fitness: Callable[[tuple[int, ...]], float], high: Sequence[float], *,
                  particles: int, iterations: int, seed: int = 0, c1: float = 1.5,
                  c2: float = 1.5, w_start: float = 1.4, w_end: float = 0.7,
                  v_max: float = 5.0, low: float = 0.0) -> ReferenceSearch:
    """The paper's asynchronous swarm with no memo: every one of the particles * (iterations
    + 1) calls trains. Its random draws follow amcf's documented order, so for one seed both
    swarms fly the same way as long as the fitness values agree."""
    rng = np.random.default_rng(seed)
    dims = len(high)
    lo, hi = np.full(dims, float(low)), np.asarray(high, dtype=np.float64)
    x = rng.uniform(lo, hi, size=(particles, dims))
    v = rng.uniform(-v_max, v_max, size=(particles, dims))
    pbest, pbest_fit = x.copy(), np.full(particles, -np.inf)
    gbest, gbest_fit = x[0].copy(), -np.inf
    history: list[dict[str, Any]] = []

    def evaluate(i: int) -> None:
        nonlocal gbest, gbest_fit
        scheme = tuple(int(value) for value in x[i])
        value = fitness(scheme)
        history.append({"scheme": list(scheme), "fitness": value})
        if value > pbest_fit[i]:
            pbest[i], pbest_fit[i] = x[i], value
        if value > gbest_fit:
            gbest, gbest_fit = x[i].copy(), value

    for i in range(particles):
        evaluate(i)
    w, step = w_start, (w_start - w_end) / iterations
    for _ in range(iterations):
        for i in range(particles):
            r1, r2 = rng.random(2)
            v[i] = np.clip(w * v[i] + c1 * r1 * (pbest[i] - x[i]) + c2 * r2 * (gbest - x[i]),
                           -v_max, v_max)
            x[i] = np.clip(x[i] + v[i], lo, hi)
            evaluate(i)
        w -= step
    best = max(history, key=lambda row: row["fitness"])  # first of equals, as strict updates
    return ReferenceSearch(tuple(best["scheme"]), best["fitness"], len(history), len(history),
                           history)

