"""Shared fixtures: small real data (scikit-learn's digits) and small CNNs to train on it."""

from __future__ import annotations

from amcf import numerics

numerics.apply()  # before anything computes: tests see the pipeline's numbers (amcf/numerics.py)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from torch import nn  # noqa: E402

from amcf.datasets import BatchAugment, Splits, TensorImageDataset  # noqa: E402
from amcf.models import SourceSpec, build_model, save_checkpoint  # noqa: E402


def _digits_splits() -> Splits:
    digits = load_digits()
    # 8x8 images with values 0..16 -> uint8 0..255, one channel, strokes bright on dark.
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    parts = {"train": order[:900], "val": order[900:1200], "test": order[1200:]}

    def dataset(idx, augment=None):
        return TensorImageDataset(torch.from_numpy(images[idx]), torch.from_numpy(labels[idx]),
                                  mean=[0.5], std=[0.5], augment=augment)

    return Splits(
        name="digits",
        train=dataset(parts["train"], BatchAugment(pad=1)),
        val=dataset(parts["val"]),
        test=dataset(parts["test"]),
        classes=[str(c) for c in range(10)],
    )


@pytest.fixture(scope="session")
def digits() -> Splits:
    """sklearn digits, 8x8 grey: 900 train (augmented by 1-px shifts), 300 val, 597 test."""
    return _digits_splits()


class SmallCNN(nn.Module):
    """Two convs and a linear head (names follow the "conv" layer convention)."""

    def __init__(self, num_classes: int = 10, width: int = 16, in_chans: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.fc = nn.Linear(2 * width * 16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.flatten(1))

    def get_classifier(self) -> nn.Module:
        return self.fc


@pytest.fixture
def make_cnn():
    """Builder of SmallCNNs; each call under ``torch.manual_seed(seed)`` for a fixed init."""

    def build(seed: int = 0, **kwargs) -> SmallCNN:
        torch.manual_seed(seed)
        return SmallCNN(**kwargs)

    return build


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two tiny ResNet 'source models' (random weights, saved as amcf checkpoints)."""
    root = tmp_path_factory.mktemp("sources")
    specs = []
    for i, name in enumerate(["a", "b"]):
        torch.manual_seed(100 + i)
        model = build_model(SourceSpec(name=name, arch="amcf_resnet_tiny", weights=None), 10,
                            in_chans=1)
        save_checkpoint(model, root / f"{name}.pt", arch="amcf_resnet_tiny", in_chans=1)
        weights = str(root / f"{name}.pt")
        specs.append(SourceSpec(name=name, arch="amcf_resnet_tiny", weights=weights))
    return specs
