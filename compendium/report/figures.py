"""Figures for the notebooks and the paper. Each function returns the Figure and, given an
output stem, writes ``<stem>.pdf`` and ``<stem>.png`` atomically.

Figures are built on ``matplotlib.figure.Figure`` (Agg canvas), not pyplot: no global state,
no display needed, nothing leaks between calls; a notebook still shows the returned Figure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from amcf.io import atomic_path

FAMILY_COLOURS = {"baseline": "tab:blue", "ablation": "tab:orange", "amcf": "tab:red"}
MAX_CONFUSION_CLASSES = 30  # above this a confusion matrix is unreadable: per-class bars only


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, stem: str | os.PathLike | None) -> Figure:
    """Write ``stem.pdf`` and ``stem.png`` (each replaced in one rename); None writes nothing."""
    if stem is not None:
        stem = Path(stem)
        for fmt in ("pdf", "png"):
            with atomic_path(stem.with_name(f"{stem.name}.{fmt}")) as tmp:
                # fixed metadata: the PDF bytes do not change between identical runs
                metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
                fig.savefig(tmp, format=fmt, dpi=150, metadata=metadata)
    return fig


def _read_csv(data: pd.DataFrame | str | os.PathLike, needed: Sequence[str], what: str):
    frame = data if isinstance(data, pd.DataFrame) else pd.read_csv(data)
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing} (has {list(frame.columns)}); "
                         "pass the file the trainer wrote")
    return frame


def plot_training_curves(
    history: pd.DataFrame | str | os.PathLike,
    stem: str | os.PathLike | None = None,
    *,
    selected_epoch: int | None = None,
    title: str | None = None,
) -> Figure:
    """Train loss, and fused val/test accuracy per epoch (thin lines: each member model)."""
    h = _read_csv(history, ["epoch", "train_loss", "val_acc", "test_acc"], "history")
    fig = _new_figure(8, 3.2)
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


def _load_search(search: Mapping | str | os.PathLike) -> Mapping:
    if isinstance(search, Mapping):
        return search
    return json.loads(Path(search).read_text(encoding="utf-8"))


def plot_swarm(
    search: Mapping | str | os.PathLike,
    stem: str | os.PathLike | None = None,
    *,
    dim_names: Sequence[str] | None = None,
) -> Figure:
    """Particle positions over iterations (one panel per source model) and the fitness of each
    evaluated scheme in call order (hollow: a cached repeat; line: best so far)."""
    hist = pd.DataFrame(_load_search(search)["history"])
    if hist.empty:
        raise ValueError("the search history is empty; the search made no fitness calls")
    positions = np.array(hist["position"].tolist(), dtype=float)
    dims = positions.shape[1]
    names = list(dim_names) if dim_names else [f"model {j}" for j in range(dims)]
    if len(names) != dims:
        raise ValueError(f"{len(names)} dim_names for a {dims}-dimensional search")
    fig = _new_figure(3.2 * (dims + 1), 3.2)
    axes = fig.subplots(1, dims + 1, squeeze=False)[0]
    for j, ax in enumerate(axes[:dims]):
        for particle, rows in hist.groupby("particle"):
            ax.plot(rows["iteration"], positions[rows.index, j], marker="o", ms=3, lw=1,
                    label=f"p{particle}")
        ax.set(xlabel="iteration", ylabel="frozen layers (position)", title=names[j])
    ax = axes[-1]
    calls = np.arange(1, len(hist) + 1)
    cached = hist["cached"].astype(bool).to_numpy()
    fitness = 100 * hist["fitness"].to_numpy(dtype=float)
    ax.scatter(calls[~cached], fitness[~cached], s=14, label="evaluated")
    ax.scatter(calls[cached], fitness[cached], s=14, facecolors="none", edgecolors="grey",
               label="cached")
    ax.plot(calls, np.maximum.accumulate(fitness), color="black", lw=1, label="best so far")
    ax.set(xlabel="fitness call", ylabel="val accuracy (%)", title="fitness per scheme")
    ax.legend(fontsize=7)
    return save_figure(fig, stem)


def _layer_params(rows: Sequence) -> list[int]:
    """#params per layer from rows given as amcf.layers.LayerRow, dicts (key 'params' or
    'num_params', as in a layers.json) or tuples (index, name, module, #params)."""
    out = []
    for row in rows:
        if isinstance(row, Mapping):
            out.append(int(row.get("params", row.get("num_params", 1))))
        elif hasattr(row, "params"):
            out.append(int(row.params))
        else:
            out.append(int(row[3]))
    return out


def plot_layer_scheme(
    layer_tables: Mapping[str, Sequence],
    scheme: Sequence[int],
    stem: str | os.PathLike | None = None,
) -> Figure:
    """Each source model's layers as bars (height: log10 #params); the bottom k_j are frozen
    (grey), the rest and the head train (colour)."""
    if len(layer_tables) != len(scheme):
        raise ValueError(f"{len(layer_tables)} layer tables for a scheme of {len(scheme)} "
                         "entries: give one table per source model, in search order")
    fig = _new_figure(8, 1.4 + 1.3 * len(scheme))
    axes = fig.subplots(len(scheme), 1, squeeze=False)[:, 0]
    for ax, (name, rows), k in zip(axes, layer_tables.items(), scheme, strict=True):
        params = _layer_params(rows)
        if not 0 <= k <= len(params):
            raise ValueError(f"scheme freezes {k} layers of {name!r}, which has {len(params)}")
        heights = np.log10(np.maximum(params, 1))
        colours = ["lightgrey" if i < k else "tab:green" for i in range(len(params))]
        ax.bar(np.arange(len(params)), heights, color=colours, edgecolor="black", lw=0.4)
        ax.bar([len(params)], [heights.max() if len(heights) else 1], color="tab:green",
               edgecolor="black", lw=0.4, hatch="//")
        ax.axvline(k - 0.5, color="black", ls="--", lw=1)
        ax.set_xticks(list(range(len(params))) + [len(params)],
                      [str(i) for i in range(len(params))] + ["head"], fontsize=7)
        ax.set_ylabel("log10 #params", fontsize=8)
        ax.set_title(f"{name}: {k} of {len(params)} layers frozen (grey), rest trained",
                     fontsize=9, loc="left")
    axes[-1].set_xlabel("layer (definition order)")
    return save_figure(fig, stem)


def plot_per_class_errors(
    predictions: pd.DataFrame | str | os.PathLike,
    stem: str | os.PathLike | None = None,
    *,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Per-class error rate (bars, with the count of test images) and, for up to
    MAX_CONFUSION_CLASSES classes, the row-normalised confusion matrix."""
    pred = _read_csv(predictions, ["label", "prediction"], "test predictions")
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
    fig = _new_figure(11 if show_matrix else 8, 4.2)
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
    table = _read_csv(comparisons, needed, "comparison table")
    if table.empty:
        raise ValueError("no comparisons to draw; comparison_table found no pair with results")
    labels = dict(labels or {})
    pairs = list(dict.fromkeys(zip(table["method_a"], table["method_b"], strict=True)))
    scopes = list(dict.fromkeys(s for s in table["scope"] if s != "pooled")) + ["pooled"]
    fig = _new_figure(7.5, 1.2 + 0.2 * len(pairs) * len(scopes))
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
        significant = (part["verdict"] != "no clear difference").to_numpy()
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
    handles = [Line2D([], [], ls="none", marker="D" if s == "pooled" else "o", color=colours[s],
                      label=s) for s in scopes]
    handles.append(Line2D([], [], ls="none", marker="o", markerfacecolor="white",
                          markeredgecolor="grey", label="hollow: no clear\ndifference (Holm)"))
    ax.legend(handles=handles, title="target", fontsize=7, title_fontsize=7,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return save_figure(fig, stem)


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
    fig = _new_figure(4.8 * len(targets), 1.0 + 0.28 * methods)
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
