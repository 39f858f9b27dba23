"""The figures of one training run: its curves and its per-class errors (drawn by the stage
that trains it, and again by the report for the paper)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from compendium.plots.canvas import new_figure, read_table, save_figure

MAX_CONFUSION_CLASSES = 30  # above this a confusion matrix is unreadable: per-class bars only


def plot_training_curves(
    history: pd.DataFrame | str | os.PathLike,
    stem: str | os.PathLike | None = None,
    *,
    selected_epoch: int | None = None,
    title: str | None = None,
) -> Figure:
    """Train loss, and fused val/test accuracy per epoch (thin lines: each member model)."""
    h = read_table(history, ["epoch", "train_loss", "val_acc", "test_acc"], "history")
    fig = new_figure(8, 3.2)
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(h["epoch"], h["train_loss"], color="black")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="training loss")
    for split, colour in (("val", "tab:blue"), ("test", "tab:red")):
        ax_acc.plot(h["epoch"], 100 * h[f"{split}_acc"], color=colour, lw=2, label=f"fused {split}")
        for col in sorted(c for c in h.columns if c.startswith(f"{split}_acc_m")):
            ax_acc.plot(h["epoch"], 100 * h[col], color=colour, lw=0.7, alpha=0.5)
    if selected_epoch is None:
        selected_epoch = int(h.loc[h["val_acc"].idxmax(), "epoch"])  # first best, as the trainer
    ax_acc.axvline(selected_epoch, color="grey", ls="--", lw=1, label="selected (val)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="fused accuracy (thin: members)")
    ax_acc.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, stem)


def plot_per_class_errors(
    predictions: pd.DataFrame | str | os.PathLike,
    stem: str | os.PathLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Per-class error rate (bars, with the count of test images) and, for up to
    MAX_CONFUSION_CLASSES classes, the row-normalised confusion matrix."""
    pred = read_table(predictions, ["label", "prediction"], "test predictions")
    labels = pred["label"].to_numpy(dtype=int)
    guesses = pred["prediction"].to_numpy(dtype=int)
    num = int(max(labels.max(), guesses.max()) + 1)
    if class_names is not None and len(class_names) < num:
        raise ValueError(f"{len(class_names)} class names for labels up to {num - 1}")
    names = list(class_names) if class_names is not None else [str(c) for c in range(num)]
    confusion = np.zeros((num, num), dtype=int)
    np.add.at(confusion, (labels, guesses), 1)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = 1 - np.diag(confusion) / support
    show_matrix = num <= MAX_CONFUSION_CLASSES
    fig = new_figure(11 if show_matrix else 8, 4.2)
    axes = fig.subplots(1, 2 if show_matrix else 1, squeeze=False)[0]
    present = np.flatnonzero(support)
    order = present[np.argsort(-error[present], kind="stable")]
    axes[0].bar(np.arange(len(order)), 100 * error[order], color="tab:red")
    axes[0].set(xlabel="class (sorted by error)", ylabel="test error (%)",
                title=f"per-class error, overall {100 * (labels != guesses).mean():.1f}%")
    if len(order) <= MAX_CONFUSION_CLASSES:
        axes[0].set_xticks(np.arange(len(order)), [names[i] for i in order], rotation=90,
                           fontsize=7)
    if show_matrix:
        with np.errstate(invalid="ignore", divide="ignore"):
            rates = confusion / support[:, None]
        image = axes[1].imshow(np.nan_to_num(rates), cmap="Blues", vmin=0, vmax=1)
        axes[1].set_xticks(range(num), names, rotation=90, fontsize=7)
        axes[1].set_yticks(range(num), names, fontsize=7)
        axes[1].set(xlabel="predicted", ylabel="true", title="confusion (row-normalised)")
        fig.colorbar(image, ax=axes[1], shrink=0.8)
    return save_figure(fig, stem)
