"""Trainer throughput on this machine: images per second for K tiny ResNets at 28 px.

Compares amcf's in-memory batch path (uint8 tensor, whole-batch augmentation) with the
same training step fed by a plain torch DataLoader over per-sample transforms, the way a
first implementation would. Prints figures; asserts nothing (speed is not a test).

    .venv/bin/python benchmarks/trainer.py [--images 2048] [--epochs 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader, Dataset

from amcf.datasets import BatchAugment, Splits, TensorImageDataset
from amcf.models import SourceSpec, build_model
from amcf.objective import MCLoss
from amcf.train.config import TrainConfig
from amcf.train.fit import fit


class PerSampleDataset(Dataset):
    """The same images, augmented one by one (pad-and-crop) as a DataLoader would."""

    def __init__(self, base: TensorImageDataset):
        self.base = base
        self.augment = BatchAugment(pad=2)
        self.generator = torch.Generator().manual_seed(0)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x = self.augment(self.base.images[i : i + 1], self.generator)
        return self.base.normalise(x)[0], self.base.labels[i]


def _splits(n: int) -> Splits:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    make = lambda idx, aug=None: TensorImageDataset(images[idx], labels[idx], [0.5], [0.5], aug)  # noqa: E731
    idx = torch.arange(n)
    return Splits("bench", make(idx, BatchAugment(pad=2)), make(idx[:256]), make(idx[:256]),
                  [str(c) for c in range(10)])


def _models(k: int) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [build_model(SourceSpec(name=f"m{j}", arch="amcf_resnet_tiny", weights=None), 10)
            for j in range(k)]


def bench_fit(k: int, splits: Splits, epochs: int) -> float:
    config = TrainConfig(epochs=epochs, batch_size=64, eval_test=False, progress=False)
    start = time.perf_counter()
    fit(_models(k), splits, config, MCLoss(0.2))
    return epochs * len(splits.train) / (time.perf_counter() - start)


def bench_dataloader(k: int, splits: Splits, epochs: int) -> float:
    models = _models(k)
    opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in models]
    loader = DataLoader(PerSampleDataset(splits.train), batch_size=64, shuffle=True)
    objective = MCLoss(0.2)
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            loss = objective.loss([m(x) for m in models], y)
            for o in opts:
                o.zero_grad()
            loss.backward()
            for o in opts:
                o.step()
    return epochs * len(splits.train) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = _splits(args.images)
    print(f"{args.images} images 28x28 grey, batch 64, {args.epochs} epochs, "
          f"{args.threads} threads; images/s per model set (K models see each image)")
    for k in (1, 3):
        ours = bench_fit(k, splits, args.epochs)
        naive = bench_dataloader(k, splits, args.epochs)
        print(f"K={k}: amcf.train.fit {ours:7.0f} img/s (incl. val each epoch) | "
              f"DataLoader loop {naive:7.0f} img/s | ratio {ours / naive:4.2f}")


if __name__ == "__main__":
    main()
