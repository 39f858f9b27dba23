"""Choices made on validation by the baselines and ablations stages: a settings grid's point,
the K ablation's source subsets. Test data plays no part in them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from amcf.train.fit import TrainResult

# Candidates (grid points, source subsets) train on the first seed of their method only: the
# chosen one's run at that seed is then the very same run (same work directory, not retrained),
# so a grid of n points costs n - 1 extra runs per target.
SELECTION_SEEDS = 1


def val_acc(train: Callable[[], TrainResult]) -> float | None:
    """The validation accuracy of one candidate's run; None when its training diverged (an
    absurd grid value can make training impossible: that candidate is then never chosen)."""
    try:
        return float(train().metrics["val_acc"])
    except FloatingPointError:
        return None


def best_on_validation(scores: Sequence[Sequence[float | None]], what: str) -> int:
    """The index of the candidate with the highest mean validation accuracy over its seeds;
    the first wins a tie, and one that diverged on any seed (None) is never chosen."""
    best, best_mean = None, float("-inf")
    for index, accs in enumerate(scores):
        if not accs or any(a is None for a in accs):
            continue
        mean = sum(accs) / len(accs)
        if mean > best_mean:  # strict: ties keep the earlier candidate
            best, best_mean = index, mean
    if best is None:
        raise ValueError(f"no candidate of {what} trained without diverging; lower "
                         "final.train.lr or narrow the grid to sensible values")
    return best


def candidates_json(accs: Sequence[float | None]) -> dict[str, Any]:
    """One candidate's validation accuracies, their mean and whether a run diverged."""
    done = [a for a in accs if a is not None]
    mean = sum(done) / len(done) if done and len(done) == len(accs) else None
    return {"val_acc": list(accs), "mean_val_acc": mean, "diverged": len(done) < len(accs)}
