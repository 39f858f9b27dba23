"""Statistics over seeds: mean and sample spread, a paired comparison of two methods, and the
choice of the best single-source baseline (on validation accuracy, never on test)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

MIN_SEEDS_FOR_TEST = 3


@dataclass(frozen=True)
class MeanStd:
    mean: float
    std: float  # sample standard deviation (ddof=1); NaN when n < 2
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


@dataclass(frozen=True)
class PairedComparison:
    method_a: str
    method_b: str
    n: int  # seeds both methods ran
    mean_diff: float  # mean over seeds of (a - b)
    p_value: float  # two-sided paired t-test; NaN when no test is meaningful (see note)
    wins: int  # seeds where a > b
    losses: int
    ties: int
    note: str  # empty when the test is meaningful


def paired_test(a: Sequence[float], b: Sequence[float], *, names=("a", "b")) -> PairedComparison:
    """Paired comparison of two equally long per-seed sequences (same seed at same index)."""
    a_arr, b_arr = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1:
        raise ValueError(f"paired_test needs two 1-d sequences of equal length, got "
                         f"{a_arr.shape} and {b_arr.shape}; pair the values by seed first")
    if a_arr.size == 0:
        raise ValueError(f"no common seeds between {names[0]} and {names[1]}")
    diff = a_arr - b_arr
    n = int(diff.size)
    note, p = "", math.nan
    if n < MIN_SEEDS_FOR_TEST:
        note = f"n = {n} < {MIN_SEEDS_FOR_TEST} seeds: a t-test is meaningless, no p-value"
    elif np.ptp(diff) <= 1e-12:
        # zero spread (up to rounding of the fractions): the t statistic is undefined
        note = "the differences are identical on every seed: the t-test is undefined"
    else:
        p = float(sps.ttest_rel(a_arr, b_arr).pvalue)
    return PairedComparison(
        method_a=names[0],
        method_b=names[1],
        n=n,
        mean_diff=float(diff.mean()),
        p_value=p,
        wins=int((diff > 0).sum()),
        losses=int((diff < 0).sum()),
        ties=int((diff == 0).sum()),
        note=note,
    )


def _per_seed(frame: pd.DataFrame, target: str, method: str, column: str) -> pd.Series:
    rows = frame[(frame["target"] == target) & (frame["method"] == method)]
    if rows.empty:
        known = sorted(frame.loc[frame["target"] == target, "method"].unique())
        raise ValueError(f"no results for method {method!r} on target {target!r}; "
                         f"methods with results there: {known}")
    return rows.set_index("seed")[column]


def paired_comparison(
    frame: pd.DataFrame, target: str, method_a: str, method_b: str, column: str = "test_acc"
) -> PairedComparison:
    """Compare two methods of the collected table on one target, paired by seed."""
    a = _per_seed(frame, target, method_a, column)
    b = _per_seed(frame, target, method_b, column)
    seeds = sorted(set(a.index) & set(b.index))
    return paired_test(a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy(), names=(method_a, method_b))


def best_single_source(
    frame: pd.DataFrame, target: str, candidates: Sequence[str] | None = None
) -> str | None:
    """The single-source baseline with the highest mean *validation* accuracy on ``target``.

    Test accuracy plays no part: choosing the reference on test would flatter it. Candidates
    default to the method table's single-source rows (fine-tuning / linear probe per source).
    Ties go to the first method in table order. None when the target has no candidate.
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
