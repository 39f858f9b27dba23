"""A paired bootstrap of the difference in test accuracy between two methods on one target,
over seeds and test images, from the runs' committed ``test_predictions.csv``.

The t interval of :mod:`compendium.report.stats` treats each seed's accuracy as exact, so it
leaves out which test images the target happened to have. Here each resample draws the seeds
(with replacement, from the pair's common seeds) and the test images (with replacement), and the
same image indices serve both methods, so the resample is of per-image differences: paired.

Every seed of a target is scored on the same test split, so the images are a draw shared by
all seeds, crossed with them rather than nested in them: one resample of the images serves
every seed (``images="shared"``). Drawing them afresh per seed would average the image noise
away over seeds and understate it. Where the seeds' test sets differ (a design that draws them
per seed), the images are resampled within each seed (``images="per-seed"``).
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from compendium import results

RESAMPLES = 10_000
# the bootstrap's generator is fixed, so the report (and the claims) are the same on every run
BOOTSTRAP_SEED = 20_2026
# resamples per block of the shared design: bounds memory to a few tens of MB per block
_BLOCK = 2_000


@dataclass(frozen=True)
class PairedItems:
    """One target's paired per-image outcomes of two methods: ``correct_a`` and ``correct_b``
    are (seeds, images) 0/1 arrays, row k from ``seeds[k]``, the same image at the same column
    within a row (and across rows when ``shared``)."""

    seeds: tuple[int, ...]
    correct_a: np.ndarray
    correct_b: np.ndarray
    shared: bool

    @property
    def diff(self) -> np.ndarray:
        return self.correct_a.astype(np.int8) - self.correct_b.astype(np.int8)


def _check_pair(a: pd.DataFrame, b: pd.DataFrame, where: str) -> None:
    for name, frame in (("a", a), ("b", b)):
        missing = {"index", "label", "prediction"} - set(frame.columns)
        if missing:
            raise ValueError(f"{where}: method {name}'s test_predictions.csv lacks columns "
                             f"{sorted(missing)}; it needs index,label,prediction (rerun it)")
    if len(a) != len(b) or not np.array_equal(a["index"].to_numpy(), b["index"].to_numpy()):
        raise ValueError(f"{where}: the two methods' test_predictions.csv list different test "
                         f"images ({len(a)} and {len(b)} rows, or other indices): they cannot "
                         "be paired; rerun both on the same test split")
    if not np.array_equal(a["label"].to_numpy(), b["label"].to_numpy()):
        bad = int((a["label"].to_numpy() != b["label"].to_numpy()).sum())
        raise ValueError(f"{where}: the two methods give {bad} test images different labels; "
                         "their test splits differ, rerun both on the same data")


def pair_items(pairs: Sequence[tuple[int, pd.DataFrame, pd.DataFrame]],
               where: str = "paired bootstrap") -> PairedItems:
    """Per seed, method a's and method b's predictions frames (index,label,prediction), checked
    to list the same images with the same labels, as a :class:`PairedItems`."""
    if not pairs:
        raise ValueError(f"{where}: no common seeds with test predictions for both methods")
    rows_a, rows_b, first = [], [], None
    shared = True
    for seed, a, b in pairs:
        _check_pair(a, b, f"{where}, seed {seed}")
        rows_a.append(a["label"].to_numpy() == a["prediction"].to_numpy())
        rows_b.append(b["label"].to_numpy() == b["prediction"].to_numpy())
        key = (a["index"].to_numpy(), a["label"].to_numpy())
        if first is None:
            first = key
        elif not (np.array_equal(first[0], key[0]) and np.array_equal(first[1], key[1])):
            shared = False
    if not shared and len({r.size for r in rows_a}) > 1:
        raise ValueError(f"{where}: the seeds have test sets of different sizes; the bootstrap "
                         "needs one test-set size per target")
    return PairedItems(tuple(int(s) for s, _, _ in pairs), np.vstack(rows_a), np.vstack(rows_b),
                       shared)


def load_items(results_dir: str | os.PathLike, target: str, method_a: str, method_b: str,
               seeds: Sequence[int]) -> PairedItems | None:
    """The pair's items on ``seeds`` from the result tree; None when a run has no
    ``test_predictions.csv`` (a member published from a joint run, e.g. a single source)."""
    pairs = []
    for seed in seeds:
        runs = [results.find_run(results_dir, target, m, int(seed)) for m in (method_a, method_b)]
        if not all((run / "test_predictions.csv").is_file() for run in runs):
            return None
        pairs.append((int(seed), *(results.predictions_frame(run) for run in runs)))
    return pair_items(pairs, f"{target}: {method_a} vs {method_b}")


def rng_for(*key: str, seed: int = BOOTSTRAP_SEED) -> np.random.Generator:
    """A generator fixed by ``key`` (e.g. target and pair): a row's resamples do not depend on
    which other rows the table holds or their order."""
    return np.random.default_rng([seed, zlib.crc32("|".join(key).encode())])


def _counts(indices: np.ndarray, size: int) -> np.ndarray:
    """Per row of resampled indices, how often each of ``size`` items was drawn."""
    rows = indices.shape[0]
    flat = (indices + size * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * size).reshape(rows, size).astype(np.float64)


def bootstrap_draws(items: PairedItems, rng: np.random.Generator,
                    resamples: int = RESAMPLES) -> np.ndarray:
    """``resamples`` bootstrap replicates of the mean difference in accuracy (a - b)."""
    d = items.diff.astype(np.float64)
    n_seeds, n_images = d.shape
    out = np.empty(resamples)
    if items.shared:
        # replicate r is c_r . D . m_r / (S N): c_r counts the resampled seeds, m_r the
        # resampled images (one draw for every seed); counts avoid an (R, S, N) index array
        for start in range(0, resamples, _BLOCK):
            r = min(_BLOCK, resamples - start)
            seeds = _counts(rng.integers(0, n_seeds, size=(r, n_seeds)), n_seeds)
            images = _counts(rng.integers(0, n_images, size=(r, n_images)), n_images)
            out[start:start + r] = np.einsum("rn,rn->r", seeds @ d, images)
        return out / (n_seeds * n_images)
    # per seed, a resample of its images changes only how many of them are a +1, 0 or -1
    # difference: a multinomial draw of those three counts is the same in distribution
    freq = np.stack([(d == v).mean(axis=1) for v in (1.0, -1.0, 0.0)], axis=1)  # (S, 3)
    picked = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    counts = rng.multinomial(n_images, freq[picked])  # (R, S, 3)
    return (counts[..., 0] - counts[..., 1]).mean(axis=1) / n_images


def percentile_interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}; e.g. 0.95")
    if draws.size == 0 or not np.all(np.isfinite(draws)):
        return math.nan, math.nan
    low, high = np.quantile(draws, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def paired_bootstrap(items: PairedItems, confidence: float, rng: np.random.Generator,
                     resamples: int = RESAMPLES) -> tuple[float, float]:
    """The percentile interval of the mean difference a - b at ``confidence``."""
    return percentile_interval(bootstrap_draws(items, rng, resamples), confidence)


def item_se(items: PairedItems) -> float:
    """The paired item-level standard error of the difference: the spread over test images of
    each image's difference (averaged over the seeds), over the square root of their number.
    NaN unless the seeds share one test set of at least two images."""
    if not items.shared or items.diff.shape[1] < 2:
        return math.nan
    per_image = items.diff.mean(axis=0)
    return float(per_image.std(ddof=1) / math.sqrt(per_image.size))


def load_items_or_none(results_dir: str | os.PathLike | None, target: str, a: str, b: str,
                       seeds: Sequence[int]) -> PairedItems | None:
    """:func:`load_items`, or None without a result tree (a table built from metrics alone)."""
    if results_dir is None or not Path(results_dir).is_dir():
        return None
    return load_items(results_dir, target, a, b, seeds)


# --- the comparison table's bootstrap columns ----------------------------------------------

BOOT_COLUMNS = ("boot_low", "boot_high", "item_se")
INTERVALS = ("bootstrap", "t")


def _common_seeds(frame: pd.DataFrame, target: str, a: str, b: str, column: str) -> list[int]:
    # the seeds comparison_table pairs: both methods ran and neither value is missing
    def values(method: str) -> pd.Series:
        rows = frame[(frame["target"] == target) & (frame["method"] == method)]
        return rows.set_index("seed")[column].dropna()

    return sorted(set(values(a).index) & set(values(b).index))


def _row_draws(frame: pd.DataFrame, results_dir: str | os.PathLike | None, row: pd.Series,
               column: str, resamples: int) -> tuple[np.ndarray | None, float]:
    target, a, b = row["scope"], row["method_a"], row["resolved_b"]
    seeds = _common_seeds(frame, target, a, b, column)
    items = load_items_or_none(results_dir, target, a, b, seeds) if seeds else None
    if items is None:
        return None, math.nan
    if column == "test_acc" and abs(float(items.diff.mean()) - float(row["mean_diff"])) > 1e-9:
        raise ValueError(f"{target}: {a} vs {b}: the test predictions give a mean difference "
                         f"of {items.diff.mean():.6f}, metrics.json {row['mean_diff']:.6f}; a "
                         "run's test_predictions.csv and metrics.json disagree, rerun it")
    rng = rng_for(str(target), str(a), str(b))
    return bootstrap_draws(items, rng, resamples), item_se(items)


def with_bootstrap(table: pd.DataFrame, frame: pd.DataFrame,
                   results_dir: str | os.PathLike | None, confidence: float,
                   column: str = "test_acc", resamples: int = RESAMPLES) -> pd.DataFrame:
    """``table`` (:func:`compendium.report.stats.comparison_table`) with the paired bootstrap
    interval and the item-level standard error of each row. A pooled row's replicates are the
    mean of its targets' replicates (each target weighs the same, as in its t interval; the
    targets' test sets are independent). NaN where a run has no test predictions (a member of
    a joint run such as a single source), or, pooled, where one of its targets has none."""
    out = table.copy()
    lows, highs, ses = [], [], []
    per_target: dict[tuple[str, str], list[np.ndarray | None]] = {}
    for _, row in out.iterrows():
        pair = (row["method_a"], row["method_b"])
        # test_predictions.csv holds the selected epoch's predictions: test_acc's only
        if row["scope"] == "pooled" or column != "test_acc":
            draws, se = None, math.nan
            if row["scope"] == "pooled":
                parts = per_target.get(pair, [])
                if parts and all(p is not None for p in parts):
                    draws = np.mean(np.vstack(parts), axis=0)
        else:
            draws, se = _row_draws(frame, results_dir, row, column, resamples)
            per_target.setdefault(pair, []).append(draws)
        low, high = (math.nan, math.nan) if draws is None else percentile_interval(draws,
                                                                                   confidence)
        lows.append(low)
        highs.append(high)
        ses.append(se)
    out["boot_low"], out["boot_high"], out["item_se"] = lows, highs, ses
    return out


def planned_interval(row: pd.Series | dict) -> tuple[float, float]:
    """The interval a row's claims use: the bootstrap one where its ``interval`` says so."""
    if row.get("interval") == "bootstrap":
        return float(row["boot_low"]), float(row["boot_high"])
    return float(row["ci_low"]), float(row["ci_high"])


def choose_interval(table: pd.DataFrame, interval: str) -> pd.Series:
    """Per row, the interval the plan's ``interval`` names, or 't' where the row has no
    bootstrap interval (no test predictions for one of its runs)."""
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; use one of {INTERVALS}")
    has_boot = (table["boot_low"].notna() if "boot_low" in table else
                pd.Series(False, index=table.index))
    return pd.Series(np.where((interval == "bootstrap") & has_boot, "bootstrap", "t"),
                     index=table.index)
