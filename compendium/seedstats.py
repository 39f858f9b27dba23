"""Per-seed summaries that the training stages and the report share: the mean and spread
over seeds, and the best single source chosen on validation accuracy."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # only named here: the training stages' workers load no pandas
    import pandas as pd


@dataclass(frozen=True)
class MeanStd:
    mean: float
    std: float  # sample standard deviation (ddof=1); NaN for a single seed
    n: int


def mean_std(values: Iterable[float]) -> MeanStd:
    """Mean and sample standard deviation (ddof=1) of per-seed values."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        raise ValueError("mean_std needs at least one value (no seeds were collected)")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"mean_std got non-finite values {arr.tolist()}; check the metrics files")
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return MeanStd(float(arr.mean()), std, int(arr.size))


def best_single_source(
    frame: pd.DataFrame, target: str, candidates: Sequence[str] | None = None
) -> str | None:
    """The single-source baseline with the highest mean *validation* accuracy on ``target``.

    Test accuracy plays no part: choosing the reference on test would flatter it. Candidates
    default to the rows marked ``single_source`` (each source's fine-tuning and linear probe,
    the method table's reference candidates). Ties go to the first method in table order
    (``order``, then the name). None when the target has no candidate.
    """
    rows = frame[frame["target"] == target]
    if candidates is None:
        rows = rows[rows["single_source"]]
    else:
        rows = rows[rows["method"].isin(list(candidates))]
    if rows.empty:
        return None
    means = rows.groupby("method").agg(val=("val_acc", "mean"), order=("order", "first"))
    means = means.reset_index().sort_values(["order", "method"], kind="stable")
    return str(means.loc[means["val"].idxmax(), "method"])
