"""The paper's figures that only the report draws: the paired differences of the decisive
comparisons; and the paper's figure set (:func:`compendium.report.paper_inputs.write_figures`)
reuses the stages' figures of one run and one search."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from compendium.plots.canvas import new_figure, read_table, save_figure


def _pair_label(a: str, b: str, labels: Mapping[str, str]) -> str:
    return f"{labels.get(a, a)}\nminus {labels.get(b, b)}"


def plot_paired_differences(
    comparisons: pd.DataFrame,
    stem: str | os.PathLike | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    confidence: float = 0.95,
) -> Figure:
    """Paired test-accuracy differences (method_a - method_b, percentage points) with their
    confidence intervals: one row per comparison, one marker per target, the pooled estimate
    in black, a line at zero; a filled marker is a Holm-significant difference.

    ``comparisons`` is :func:`compendium.report.stats.comparison_table`.
    """
    needed = ["scope", "method_a", "method_b", "mean_diff", "ci_low", "ci_high", "verdict"]
    table = read_table(comparisons, needed, "comparison table")
    if table.empty:
        raise ValueError("no comparisons to draw; comparison_table found no pair with results")
    labels = dict(labels or {})
    pairs = list(dict.fromkeys(zip(table["method_a"], table["method_b"], strict=True)))
    scopes = list(dict.fromkeys(s for s in table["scope"] if s != "pooled")) + ["pooled"]
    fig = new_figure(7.5, 1.2 + 0.2 * len(pairs) * len(scopes))
    ax = fig.subplots()
    step = 0.7 / max(1, len(scopes) - 1)
    colours = {s: f"C{i}" for i, s in enumerate(scopes[:-1])} | {"pooled": "black"}
    for i, scope in enumerate(scopes):
        part = table[table["scope"] == scope]
        rows = [pairs.index((a, b)) for a, b in zip(part["method_a"], part["method_b"],
                                                     strict=True)]
        y = np.array(rows, dtype=float) - 0.35 + i * step if len(scopes) > 1 else np.array(rows)
        mean = 100 * part["mean_diff"].to_numpy(dtype=float)
        low = 100 * part["ci_low"].to_numpy(dtype=float)
        high = 100 * part["ci_high"].to_numpy(dtype=float)
        err = np.vstack([mean - low, high - mean])
        ax.errorbar(mean, y, xerr=np.nan_to_num(err), fmt="none", ecolor=colours[scope],
                    elinewidth=1.6 if scope == "pooled" else 1, capsize=2)
        significant = part["verdict"].isin(["higher", "lower"]).to_numpy()
        marker = "D" if scope == "pooled" else "o"
        ax.scatter(mean[significant], y[significant], marker=marker, color=colours[scope],
                   zorder=3, s=30)
        ax.scatter(mean[~significant], y[~significant], marker=marker, facecolors="white",
                   edgecolors=colours[scope], zorder=3, s=30)
    ax.axvline(0, color="grey", lw=1, ls="--")
    for row in range(1, len(pairs)):
        ax.axhline(row - 0.5, color="lightgrey", lw=0.6)
    ax.set_yticks(range(len(pairs)), [_pair_label(a, b, labels) for a, b in pairs], fontsize=8)
    ax.set_ylim(len(pairs) - 0.5, -0.5)
    ax.set_xlabel(f"test accuracy difference (percentage points), "
                  f"{100 * confidence:.0f}% confidence interval")
    ax.set_ylabel("comparison")
    # pooled rows are descriptive (no verdict), so their diamond is always hollow
    handles = [Line2D([], [], ls="none", marker="D" if s == "pooled" else "o", color=colours[s],
                      markerfacecolor="white" if s == "pooled" else colours[s], label=s)
               for s in scopes]
    handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="white",
                          markeredgecolor="grey",
                          label="hollow: no clear\ndifference (Holm),\nor descriptive"))
    ax.legend(handles=handles, title="target", fontsize=7, title_fontsize=7,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return save_figure(fig, stem)
