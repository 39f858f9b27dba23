"""Each split is evaluated at most once per epoch: the callbacks that score subsets of the
models (the fitness's validation loss, amcf-select) read the logits of fit's own passes and
get the numbers a pass of their own gives, bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amcf.amls import make_fitness
from amcf.source_selection import SubsetSelection
from amcf.train.config import FitnessConfig, TrainConfig
from amcf.train.evaluate import subset_scores
from amcf.train.fit import fit

CONFIG = TrainConfig(epochs=3, batch_size=64, lr=0.05, progress=False)
SEEN: dict[str, int] = {"eval_images": 0}  # shared by every (deep-copied) counting model


class Counting(nn.Module):
    """A model that counts the images it sees in eval mode (evaluation passes)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            SEEN["eval_images"] += x.shape[0]
        return self.inner(x)


@pytest.mark.parametrize("test_eval", ["every", "improved"])
def test_selection_from_fits_passes_equals_its_own_passes(digits, make_cnn, test_eval):
    config = CONFIG.model_copy(update={"test_eval": test_eval})
    models = [make_cnn(seed=j) for j in range(2)]
    shared = SubsetSelection(models, digits, config)
    own = SubsetSelection(models, digits, config)
    passes = []

    def both(epoch, row, evals):
        shared(epoch, row, evals=evals)
        own(epoch, row)  # the plain path: a pass of its own over val (and test)
        passes.append(dict(evals.passes))

    fit(models, digits, config, callback=both)
    assert shared.rows == own.rows and len(shared.rows) == 3
    assert shared.best_predictions == own.best_predictions
    assert shared.test_labels == own.test_labels
    # fit's val pass served the choice; test was read once, by fit or for the selection
    assert all(p.get("val") == 1 and p.get("test", 0) <= 1 for p in passes)
    if test_eval == "every":
        assert all(p == {"val": 1, "test": 1} for p in passes)


def test_fitness_loss_from_fits_pass_equals_a_pass_of_its_own(digits, make_cnn):
    models = [make_cnn(seed=j) for j in range(2)]
    pairs = []

    def both(epoch, row, evals):
        (shared,), _ = evals.subset_outputs("val", [[0, 1]])
        [(acc, loss)] = subset_scores(models, digits.val, [[0, 1]], batch_size=256,
                                      device=torch.device("cpu"))
        pairs.append(((shared.acc, shared.loss), (acc, loss), row["val_acc"]))

    fit(models, digits, CONFIG, callback=both)
    for shared, plain, fit_acc in pairs:
        assert shared == plain and shared[0] == fit_acc


def test_a_fitness_run_evaluates_validation_once_per_epoch(digits, make_cnn):
    config = FitnessConfig(epochs=2, batch_size=64, lr=0.05, progress=False)
    fitness = make_fitness(["a", "b"], digits, config,
                           build=lambda j: Counting(make_cnn(seed=j)),
                           freeze=lambda model, k, freeze_bn_stats=False: model)
    SEEN["eval_images"] = 0
    run = fitness.measure((0, 0))
    # two models, two epochs, each validation image once per model and epoch (fit's pass)
    assert SEEN["eval_images"] == 2 * 2 * len(digits.val)
    assert len(run["val_loss"]) == 2 and all(loss > 0 for loss in run["val_loss"])
