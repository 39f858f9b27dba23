"""A grid of example images per class: what a dataset looks like to the models."""

from __future__ import annotations

import os

import numpy as np
import torch
from matplotlib.figure import Figure

from amcf.reporting.figures import save_figure


def _as_picture(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) normalised tensor -> (H, W[, 3]) in [0, 1] for imshow (min-max per image)."""
    x = x.detach().float()
    x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def plot_samples(dataset, classes: list[str], stem: str | os.PathLike | None = None, *,
                 per_class: int = 6, max_classes: int = 12, title: str | None = None) -> Figure:
    """The first ``per_class`` images of the first ``max_classes`` classes of ``dataset``."""
    labels = [int(dataset[i][1]) for i in range(len(dataset))] if not hasattr(
        dataset, "labels") else dataset.labels.tolist()
    shown = sorted(set(labels))[:max_classes]
    fig = Figure(figsize=(per_class * 0.9, len(shown) * 0.95 + 0.4), layout="constrained")
    axes = fig.subplots(len(shown), per_class, squeeze=False)
    for row, c in enumerate(shown):
        idx = [i for i, y in enumerate(labels) if y == c][:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(idx):
                ax.imshow(_as_picture(dataset[idx[col]][0]), cmap="gray")
            if col == 0:
                ax.set_ylabel(classes[c][:14], rotation=0, ha="right", va="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, stem)
