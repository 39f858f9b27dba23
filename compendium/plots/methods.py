"""The figure of one stage group on its targets: each method's mean test accuracy over seeds."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from compendium.plots.canvas import new_figure, save_figure

FAMILY_COLOURS = {"baseline": "tab:blue", "ablation": "tab:orange", "amcf": "tab:red"}


def plot_method_accuracies(
    frame: pd.DataFrame,
    stem: str | os.PathLike | None = None,
    *,
    column: str = "test_acc",
) -> Figure:
    """Mean test accuracy (val-selected epoch) with +-1 sample std over seeds: one row per
    method, sorted by the mean, one panel per target, coloured by family."""
    if column not in frame.columns:
        raise ValueError(f"no column {column!r} in the results frame; use e.g. 'test_acc'")
    targets = sorted(frame["target"].unique())
    if not targets:
        raise ValueError("the results frame is empty; collect some runs first")
    methods = frame.groupby("target")["method"].nunique().max()
    fig = new_figure(4.8 * len(targets), 1.0 + 0.28 * methods)
    axes = fig.subplots(1, len(targets), squeeze=False)[0]
    for ax, target in zip(axes, targets, strict=True):
        agg = frame[frame["target"] == target].groupby("method").agg(
            acc=(column, "mean"), std=(column, "std"), family=("family", "first"),
            label=("label", "first")).sort_values("acc")
        y = np.arange(len(agg))
        for family in dict.fromkeys(agg["family"]):
            mask = (agg["family"] == family).to_numpy()
            ax.errorbar(100 * agg["acc"][mask], y[mask], xerr=100 * agg["std"][mask].fillna(0),
                        fmt="o", ms=4, capsize=2, color=FAMILY_COLOURS.get(family, "tab:grey"),
                        label=family)
        ax.set_yticks(y, agg["label"].tolist(), fontsize=7)
        ax.set(xlabel="test accuracy (%), mean $\\pm$ std over seeds", title=target)
        ax.grid(axis="x", color="lightgrey", lw=0.5)
    axes[0].set_ylabel("method (sorted by mean)")
    axes[-1].legend(fontsize=7, loc="lower right")
    return save_figure(fig, stem)
