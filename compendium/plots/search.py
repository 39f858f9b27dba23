"""The figures of one layer search: the swarm over its iterations, and the scheme it chose
drawn on each source's layers."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from compendium.plots.canvas import new_figure, save_figure


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
    fig = new_figure(3.2 * (dims + 1), 3.2)
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
    fig = new_figure(8, 1.4 + 1.3 * len(scheme))
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
