"""``amcf-select``: AMCF whose fused prediction keeps only the sources that help, chosen on
the validation split.

AMCF predicts with the sum of all K models' logits, so a source that learnt little still
casts its vote. After each epoch of AMCF's training, ``amcf-select`` scores every non-empty
subset of the K trained models (2^K - 1 of them: 3 for the paper's K = 2) by the validation
accuracy of their summed logits and keeps the best. Ties go to the lower validation
cross-entropy of the fused prediction, then to the larger subset (drop a source only when it
hurts), then to the earlier subset of :func:`nonempty_subsets`.

Why a subset and not validation-weighted fusion: with the ~150-image validation splits of
small targets, K real-valued weights fitted on validation would overfit it, while a choice
among 2^K - 1 subsets is a small, discrete decision that includes plain AMCF (all sources)
and can only drop a model; it also leaves each model's logits on their trained scale.

The epoch is then selected as for every method (:func:`amcf.train.records.summarise`): the
first epoch with the best validation accuracy, here of the selected subset. The test split
is read only to report the selected subset's accuracy; no choice looks at it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from amcf.datasets import Splits
from amcf.io import read_json, write_json
from amcf.train.config import TrainConfig, resolve_device
from amcf.train.evaluate import EpochEvaluation, subset_outputs
from amcf.train.records import best_index

Subset = tuple[int, ...]


def nonempty_subsets(k: int) -> list[Subset]:
    """Every non-empty subset of range(k): smallest first, in lexicographic order."""
    if k < 1:
        raise ValueError(f"need at least one model to select from, got k={k}")
    return [c for size in range(1, k + 1) for c in itertools.combinations(range(k), size)]


def select_subset(subsets: Sequence[Subset], val: Sequence[tuple[float, float]]) -> int:
    """Index of the subset with the best validation (accuracy, loss) pair.

    Highest accuracy; then lowest loss; then the larger subset; then the first listed.
    """
    if len(subsets) != len(val) or not subsets:
        raise ValueError(f"need one (accuracy, loss) per subset, got {len(val)} for "
                         f"{len(subsets)} subsets")
    best = 0
    for i in range(1, len(subsets)):
        mine = (val[i][0], -val[i][1], len(subsets[i]))
        theirs = (val[best][0], -val[best][1], len(subsets[best]))
        if mine > theirs:  # strict: the first listed wins a full tie
            best = i
    return best


class SubsetSelection:
    """A :func:`amcf.train.fit` callback: after each epoch, the subset chosen on validation
    and its validation and test accuracy; one row per epoch, kept in ``path`` (when given,
    written after every epoch) so that a resumed run keeps the rows of earlier epochs.
    """

    def __init__(self, models: Sequence[nn.Module], splits: Splits, config: TrainConfig,
                 path: str | Path | None = None):
        self.models = list(models)
        self.splits = splits
        self.config = config
        self.subsets = nonempty_subsets(len(self.models))
        self.path = None if path is None else Path(path)
        self.rows: list[dict[str, Any]] = []
        self.best_predictions: list[int] | None = None
        self.test_labels: list[int] | None = None
        if self.path is not None and self.path.exists():
            saved = read_json(self.path)
            self.rows = saved["rows"]
            self.best_predictions, self.test_labels = saved["predictions"], saved["labels"]

    def _eval(self, split: str, subsets, keep_predictions=False,
              evals: EpochEvaluation | None = None):
        dataset = getattr(self.splits, split)
        if evals is not None and evals.serves(self.models, split, dataset):
            # the epoch's own pass (fit's logits): the same numbers without a second pass
            return evals.subset_outputs(split, subsets, keep_predictions)
        return subset_outputs(
            self.models, dataset, subsets, batch_size=max(256, self.config.batch_size),
            device=resolve_device(self.config.device), amp=self.config.amp,
            channels_last=self.config.channels_last, num_workers=self.config.workers(),
            keep_predictions=keep_predictions)

    def choose(self, evals: EpochEvaluation | None = None
               ) -> tuple[Subset, list[tuple[float, float]]]:
        """The subset chosen on validation now, and every subset's (accuracy, loss)."""
        outputs, _ = self._eval("val", self.subsets, evals=evals)
        val = [(o.acc, o.loss) for o in outputs]
        return self.subsets[select_subset(self.subsets, val)], val

    def __call__(self, epoch: int, row: dict[str, Any] | None = None,
                 evals: EpochEvaluation | None = None) -> dict[str, Any]:
        """The epoch's row; ``evals`` (from :func:`amcf.train.fit.fit`) are the epoch's
        evaluation passes, whose logits it reads instead of evaluating val and test again."""
        subset, val = self.choose(evals)
        chosen_val = val[self.subsets.index(subset)]
        # a resumed run repeats no epoch, but a retrained one starts its rows again
        self.rows = [r for r in self.rows if r["epoch"] < epoch]
        improved = all(chosen_val[0] > r["val_acc"] for r in self.rows)
        test = None
        # as fit does: with test_eval "improved" only the epochs selection can report
        if self.config.eval_test and (self.config.test_eval == "every" or improved):
            test, labels = self._eval("test", [subset, self.subsets[-1]],
                                      keep_predictions=True, evals=evals)
        if improved:
            self.best_predictions = None if test is None else test[0].predictions.tolist()
            self.test_labels = None if test is None else labels.tolist()
        self.rows.append({"epoch": epoch, "subset": list(subset),
                          "val_acc": chosen_val[0], "val_loss": chosen_val[1],
                          "test_acc": None if test is None else test[0].acc,
                          "full_val_acc": val[-1][0],
                          "full_test_acc": None if test is None else test[1].acc})
        if self.path is not None:
            write_json(self.path, {"rows": self.rows, "predictions": self.best_predictions,
                                   "labels": self.test_labels})
        return self.rows[-1]

    def complete(self, epochs: int) -> bool:
        """Whether there is one row for each of epochs 1..``epochs``."""
        return [r["epoch"] for r in self.rows] == list(range(1, epochs + 1))

    def reset(self) -> None:
        self.rows, self.best_predictions, self.test_labels = [], None, None
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def summary(self, names: Sequence[str]) -> dict[str, Any]:
        """Model selection over the epochs, as for every method, with the chosen sources."""
        if not self.rows:
            raise ValueError("no epochs recorded: run the training with this callback first")
        sel = self.rows[best_index([r["val_acc"] for r in self.rows])]
        tests = [r["test_acc"] for r in self.rows if r["test_acc"] is not None]
        if self.config.test_eval != "every":  # a maximum over some epochs only
            tests = []
        return {
            "selected_epoch": sel["epoch"], "val_acc": sel["val_acc"],
            "test_acc": sel["test_acc"], "best_test_acc": max(tests) if tests else None,
            "final_test_acc": self.rows[-1]["test_acc"],
            "selected_sources": [names[j] for j in sel["subset"]],
            "all_sources_val_acc": sel["full_val_acc"],
            "all_sources_test_acc": sel["full_test_acc"],
            "selected_sources_by_epoch": [[names[j] for j in r["subset"]] for r in self.rows],
        }
