"""Statistics over seeds: mean and sample spread, a paired comparison of two methods, the
choice of the best single-source baseline (on validation accuracy, never on test), paired
differences with t intervals, their pooling over targets, Holm's correction, and the table of
comparisons the paper's claims are generated from (:mod:`compendium.report.claims`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

# shared with the training stages (their summaries, the baselines' best single source)
from compendium.plan import BEST_SINGLE  # each target's best single source (chosen on val)
from compendium.seedstats import MeanStd, best_single_source, mean_std  # noqa: F401

MIN_SEEDS_FOR_TEST = 3


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


# --- paired differences with intervals, Holm's correction, the comparison table -------------

ALPHA = 0.05
CONFIDENCE = 0.95
POOLED = "pooled"
# a row outside the adjusted family (pooled, or a pair the plan calls exploratory) carries an
# interval but no verdict of significance
DESCRIPTIVE = "descriptive"
VERDICTS = ("higher", "lower", "no clear difference", DESCRIPTIVE)
EQUIVALENT, NOT_EQUIVALENT = "equivalent", "not shown equivalent"


@dataclass(frozen=True)
class PairedInterval:
    """Mean of per-seed differences a - b with a two-sided t interval and p-value."""

    n: int
    mean_diff: float
    se: float  # standard error of the mean difference; NaN when n < 2
    df: float
    ci_low: float
    ci_high: float
    p: float  # two-sided; NaN when the test is undefined (n < 2 or no spread)


def _t_interval(mean: float, se: float, df: float, n: int,
                confidence: float) -> PairedInterval:
    if not (df > 0 and math.isfinite(se)):
        return PairedInterval(n, mean, se, df, math.nan, math.nan, math.nan)
    if se <= 1e-12:
        # every difference equal: the interval collapses and the t statistic is undefined
        return PairedInterval(n, mean, se, df, mean, mean, math.nan)
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * sps.t.sf(abs(mean) / se, df))
    return PairedInterval(n, mean, se, df, mean - half, mean + half, p)


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = CONFIDENCE) -> PairedInterval:
    """Paired difference a - b (same seed at the same index): mean, t interval, p-value."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}; e.g. 0.95")
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.ndim != 1 or diff.size == 0:
        raise ValueError("paired_difference needs two non-empty 1-d sequences of equal "
                         "length; pair the values by seed first")
    if not np.all(np.isfinite(diff)):
        raise ValueError(f"paired_difference got non-finite values {diff.tolist()}; "
                         "check the metrics files")
    n = int(diff.size)
    se = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return _t_interval(float(diff.mean()), se, n - 1, n, confidence)


def stratified_difference(groups: Sequence[tuple[Sequence[float], Sequence[float]]],
                          confidence: float = CONFIDENCE) -> PairedInterval:
    """The mean over strata (targets) of each stratum's mean paired difference.

    Each target weighs the same however many seeds it has, so the estimate answers "by how
    much does a beat b on an average target". Its variance is sum_t s_t^2 / (n_t T^2) (the
    strata are independent; s_t is the spread of target t's differences), and the t interval
    takes the Welch-Satterthwaite degrees of freedom. A t-interval over all target x seed
    pairs would instead count the differences between targets' effects as seed noise and
    weigh targets by their seed counts. Strata with fewer than two pairs give no variance and
    are left out.
    """
    parts = [np.asarray(a, dtype=float) - np.asarray(b, dtype=float) for a, b in groups]
    parts = [d for d in parts if d.size >= 2]
    if not parts:
        return PairedInterval(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    t = len(parts)
    mean = float(np.mean([d.mean() for d in parts]))
    weights = np.array([d.var(ddof=1) / (d.size * t * t) for d in parts])
    dofs = np.array([d.size - 1 for d in parts], dtype=float)
    var = float(weights.sum())
    df = var * var / float(np.sum(weights ** 2 / dofs)) if var > 0 else math.nan
    n = int(sum(d.size for d in parts))
    if var <= 0:
        return PairedInterval(n, mean, 0.0, math.nan, mean, mean, math.nan)
    return _t_interval(mean, math.sqrt(var), df, n, confidence)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order (NaN stays NaN and does not
    count towards the family size).

    The i-th smallest of m p-values is multiplied by m - i + 1; a running maximum keeps the
    adjusted values monotone in the raw ones, and they are capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    out = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


def verdict(mean_diff: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """'higher' / 'lower' when the adjusted p-value is below alpha, else no clear difference."""
    if math.isfinite(p_adjusted) and p_adjusted < alpha:
        return "higher" if mean_diff > 0 else "lower"
    return "no clear difference"


def equivalence(ci_low: float, ci_high: float, margin: float | None) -> str:
    """EQUIVALENT when the whole interval lies strictly within +-margin (a two one-sided test
    at half the interval's error rate), NOT_EQUIVALENT otherwise; "" without an interval or
    a margin."""
    if margin is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return ""
    return EQUIVALENT if -margin < ci_low and ci_high < margin else NOT_EQUIVALENT


def reference_source(frame: pd.DataFrame, target: str,
                     candidates: Sequence[str] | None = None) -> str | None:
    """The report's best single source on ``target``: :func:`best_single_source` (chosen on
    validation) among the candidates that ran on the most seeds. A linear probe on the first
    few seeds does not compete with fine-tuning on every seed: validation means over
    different seeds are not comparable, and the reference must pair with AMCF on all of
    them."""
    rows = frame[frame["target"] == target]
    rows = (rows[rows["single_source"].astype(bool)] if candidates is None
            else rows[rows["method"].isin(list(candidates))])
    if rows.empty:
        return None
    seeds = rows.groupby("method")["seed"].nunique()
    return best_single_source(frame, target, list(seeds.index[seeds == seeds.max()]))


def resolve_method(frame: pd.DataFrame, target: str, method: str) -> str | None:
    """A method id on ``target``: BEST_SINGLE becomes that target's best single source
    (:func:`reference_source`); None when the method has no results there."""
    if method == BEST_SINGLE:
        return reference_source(frame, target)
    rows = frame[(frame["target"] == target) & (frame["method"] == method)]
    return None if rows.empty else method


def _paired_values(frame: pd.DataFrame, target: str, a: str, b: str,
                   column: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed values of a and b on their common seeds (a seed with a NaN is dropped)."""
    va, vb = _per_seed(frame, target, a, column), _per_seed(frame, target, b, column)
    both = pd.concat([va.rename("a"), vb.rename("b")], axis=1, join="inner").dropna()
    both = both.sort_index()
    return both["a"].to_numpy(dtype=float), both["b"].to_numpy(dtype=float)


COMPARISON_COLUMNS = ("scope", "method_a", "method_b", "resolved_b", "n", "mean_diff", "ci_low",
                      "ci_high", "p", "p_holm", "verdict", "equivalence")


def comparison_table(frame: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                     column: str = "test_acc", alpha: float = ALPHA,
                     confidence: float = CONFIDENCE, *,
                     adjusted: Sequence[tuple[str, str]] | None = None,
                     margin: float | None = None) -> pd.DataFrame:
    """Paired comparisons of (method_a, method_b) per target and pooled over targets.

    Per target the two methods are paired by seed on their common seeds; ``method_b`` may be
    BEST_SINGLE (each target's best single source, chosen on validation; ``resolved_b`` names
    it). The pooled row is :func:`stratified_difference` over the targets where both ran.

    Holm's correction runs over the per-target rows of the ``adjusted`` pairs (default: every
    pair), the family the analysis plan fixes; only they get a verdict. A pooled row is a
    function of its pair's per-target rows, so testing it too would count the same evidence
    twice: it and the rows of pairs outside the family are DESCRIPTIVE (their ``p`` is the
    unadjusted one, ``p_holm`` is NaN). ``equivalence`` compares each interval with
    ``margin`` (:func:`equivalence`).
    """
    if not pairs:
        raise ValueError("comparison_table needs at least one (method_a, method_b) pair")
    if column not in frame.columns:
        raise ValueError(f"no column {column!r} in the results frame; use e.g. 'test_acc'")
    rows = []
    for method_a, method_b in pairs:
        strata, resolved = [], []
        for target in sorted(frame["target"].unique()):
            a = resolve_method(frame, target, method_a)
            b = resolve_method(frame, target, method_b)
            if a is None or b is None or a == b:
                continue
            va, vb = _paired_values(frame, target, a, b, column)
            if va.size == 0:
                continue
            strata.append((va, vb))
            resolved.append(b)
            rows.append((target, method_a, method_b, b, paired_difference(va, vb, confidence)))
        if strata:
            rows.append((POOLED, method_a, method_b, ", ".join(dict.fromkeys(resolved)),
                         stratified_difference(strata, confidence)))
    table = pd.DataFrame(
        [{"scope": s, "method_a": a, "method_b": b, "resolved_b": rb, "n": r.n,
          "mean_diff": r.mean_diff, "ci_low": r.ci_low, "ci_high": r.ci_high, "p": r.p}
         for s, a, b, rb, r in rows], columns=list(COMPARISON_COLUMNS[:-3]))
    family_pairs = set(pairs if adjusted is None else adjusted)
    family = np.array([scope != POOLED and (a, b) in family_pairs for scope, a, b in
                       zip(table["scope"], table["method_a"], table["method_b"], strict=True)],
                      dtype=bool)
    p_holm = np.full(len(table), math.nan)
    if family.any():
        p_holm[family] = holm(table.loc[family, "p"].to_numpy(dtype=float))
    table["p_holm"] = p_holm
    table["verdict"] = [verdict(d, p, alpha) if member else DESCRIPTIVE
                        for d, p, member in zip(table["mean_diff"], p_holm, family, strict=True)]
    table["equivalence"] = [equivalence(lo, hi, margin)
                            for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)]
    return table


# AMCF against its strongest control first, then the reference, then its ablations; the
# source-selecting variant against AMCF and the ensemble
DECISIVE_PAIRS = (
    ("amcf", "ensemble"), ("amcf", BEST_SINGLE), ("amcf", "amcf-lam0"), ("amcf", "amcf-full"),
    ("amcf", "amcf-random"), ("amcf-select", "amcf"), ("amcf-select", "ensemble"),
)


def decisive_pairs(frame: pd.DataFrame,
                   pairs: Sequence[tuple[str, str]] = DECISIVE_PAIRS) -> list[tuple[str, str]]:
    """The pairs of ``pairs`` whose two methods both have results (a method not run, such as
    amcf-select before it exists, is skipped)."""
    present = set(frame["method"])
    has_single = bool(frame["single_source"].any())
    return [(a, b) for a, b in pairs
            if a in present and (b in present or (b == BEST_SINGLE and has_single))]
