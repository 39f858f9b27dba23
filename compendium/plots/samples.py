"""A grid of example images per class: what a dataset looks like to the models."""

from __future__ import annotations

import os

import numpy as np
import torch
from matplotlib.figure import Figure

from compendium.plots.canvas import save_figure


def _as_picture(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) normalised tensor -> (H, W[, 3]) in [0, 1] for imshow (min-max per image)."""
    x = x.detach().float()
    x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def _short_label(name: str, width: int = 16) -> str:
    """A class name in at most two lines of ``width`` characters ('Alphabet/characterNN' is
    split at the slash, so the alphabet stays readable)."""
    return "\n".join(part if len(part) <= width else part[:width - 1] + "…"
                     for part in name.split("/", 1))


def _spread(values: list[int], n: int) -> list[int]:
    """``n`` of ``values``, evenly spaced (the first and the last included)."""
    if len(values) <= n:
        return values
    return [values[int(round(i))] for i in np.linspace(0, len(values) - 1, n)]


def plot_samples(dataset, classes: list[str], stem: str | os.PathLike | None = None, *,
                 per_class: int = 6, max_classes: int = 12, title: str | None = None) -> Figure:
    """Up to ``per_class`` images of ``max_classes`` classes of ``dataset``, the classes spread
    evenly over the class list (so that every alphabet or group shows, not only the first)."""
    labels = [int(dataset[i][1]) for i in range(len(dataset))] if not hasattr(
        dataset, "labels") else dataset.labels.tolist()
    shown = _spread(sorted(set(labels)), max_classes)
    members = {c: [i for i, y in enumerate(labels) if y == c][:per_class] for c in shown}
    cols = max(len(idx) for idx in members.values())  # no empty frames for few-shot sets
    fig = Figure(figsize=(cols * 0.9 + 1.2, len(shown) * 0.95 + 0.4), layout="constrained")
    axes = fig.subplots(len(shown), cols, squeeze=False)
    for row, c in enumerate(shown):
        idx = members[c]
        for col in range(cols):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(idx):
                ax.imshow(_as_picture(dataset[idx[col]][0]), cmap="gray")
            else:
                ax.set_axis_off()
            if col == 0:
                ax.set_ylabel(_short_label(classes[c]), rotation=0, ha="right", va="center",
                              fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, stem)
