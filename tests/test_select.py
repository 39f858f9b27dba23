"""amcf-select: the sources of the fused prediction chosen on validation, never on test."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from amcf.datasets import Splits, TensorImageDataset
from amcf.source_selection import SubsetSelection, nonempty_subsets, select_subset
from amcf.train.config import TrainConfig
from compendium.stages.amcf import run_amcf_and_select
from compendium.stages.runs import Setting, run_amcf_variant

C = 4
CONFIG = TrainConfig(epochs=1, batch_size=64, seed=0, progress=False)


def _split(n: int, seed: int) -> TensorImageDataset:
    """4x4 grey images whose first pixel encodes the class; the other 15 are noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, C, (n,), generator=g)
    images = torch.randint(0, 256, (n, 1, 4, 4), generator=g, dtype=torch.uint8)
    images[:, 0, 0, 0] = (60 * labels + 30).to(torch.uint8)
    return TensorImageDataset(images, labels, mean=[0.5], std=[0.5])


def _splits() -> Splits:
    return Splits(name="toy", train=_split(50, 0), val=_split(300, 1), test=_split(300, 2),
                  classes=[str(c) for c in range(C)])


class Member(nn.Module):
    """Logits = the class signal (from the first pixel) plus a fixed random projection of
    the noise pixels: each member errs on different images, so their sum errs less."""

    def __init__(self, seed: int, signal: float = 1.0, noise: float = 1.5):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", noise * torch.randn(15, C, generator=g))
        centres = (torch.arange(C) * 60 + 30) / 255.0 * 2 - 1
        self.register_buffer("centres", centres)
        self.signal = signal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        return -self.signal * (flat[:, :1] - self.centres).abs() * 4 + flat[:, 1:] @ self.w


class Constant(nn.Module):
    """A member that learnt nothing: the same confident vote for class 0 on every image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([8.0, 0.0, 0.0, 0.0]).expand(x.shape[0], C)


def test_subsets_and_tie_breaks():
    subsets = nonempty_subsets(3)
    assert len(subsets) == 7 and subsets[-1] == (0, 1, 2) and subsets[0] == (0,)
    # the best accuracy wins whatever the loss
    assert select_subset([(0,), (1,), (0, 1)], [(0.5, 0.1), (0.7, 9.0), (0.6, 0.1)]) == 1
    # equal accuracy: the lower loss wins
    assert select_subset([(0,), (1,), (0, 1)], [(0.7, 0.5), (0.7, 0.4), (0.7, 0.6)]) == 1
    # equal accuracy and loss: the larger subset, then the first listed
    assert select_subset([(0,), (1,), (0, 1)], [(0.7, 0.5), (0.7, 0.5), (0.7, 0.5)]) == 2
    assert select_subset([(0,), (1,)], [(0.7, 0.5), (0.7, 0.5)]) == 0
    with pytest.raises(ValueError, match="one \\(accuracy, loss\\) per subset"):
        select_subset([(0,), (1,)], [(0.7, 0.5)])


def test_a_useless_member_is_dropped():
    splits = _splits()
    tracker = SubsetSelection([Member(1), Member(2), Constant()], splits, CONFIG)
    subset, val = tracker.choose()
    assert 2 not in subset  # the constant vote is left out
    full = val[-1]
    assert val[tracker.subsets.index(subset)][0] >= full[0]
    assert val[tracker.subsets.index(subset)][0] > full[0]  # here it hurt: dropping it helps


def test_all_members_kept_when_each_helps():
    splits = _splits()
    tracker = SubsetSelection([Member(1), Member(2), Member(3)], splits, CONFIG)
    subset, val = tracker.choose()
    alone = [val[tracker.subsets.index((j,))][0] for j in range(3)]
    assert subset == (0, 1, 2)
    assert val[-1][0] > max(alone)  # the members' sum beats each of them


def test_the_choice_never_reads_test_labels():
    splits = _splits()
    shuffled = torch.randperm(len(splits.test), generator=torch.Generator().manual_seed(5))
    test = splits.test
    permuted = dataclasses.replace(splits, test=TensorImageDataset(
        test.images, test.labels[shuffled], mean=[0.5], std=[0.5]))
    models = [Member(1), Member(2), Constant()]
    rows = [SubsetSelection(models, s, CONFIG)(1) for s in (splits, permuted)]
    assert rows[0]["subset"] == rows[1]["subset"]
    assert rows[0]["val_acc"] == rows[1]["val_acc"]
    assert rows[0]["test_acc"] != rows[1]["test_acc"]  # the test labels did change


def test_rows_survive_a_restart_and_select_the_epoch_on_validation(tmp_path):
    splits = _splits()
    path = tmp_path / "selection.json"
    first = SubsetSelection([Member(1), Member(2)], splits, CONFIG, path)
    first(1)
    again = SubsetSelection([Member(1), Member(2)], splits, CONFIG, path)
    assert again.rows == first.rows and not again.complete(2)
    again(2)
    assert again.complete(2)
    summary = again.summary(["a", "b"])
    assert summary["selected_epoch"] == 1  # equal validation accuracy: the first epoch wins
    assert summary["selected_sources_by_epoch"] == [summary["selected_sources"]] * 2


def test_one_training_publishes_amcf_exactly_and_its_choice_of_sources(digits, sources,
                                                                       tmp_path):
    setting = Setting(splits=digits, sources=sources, scheme=(3, 5),
                      train=TrainConfig(epochs=2, batch_size=64, lr=0.05, progress=False),
                      results_dir=tmp_path / "results", work_dir=tmp_path / "work")
    out = run_amcf_and_select(setting, 0)
    assert out == setting.out_dir("amcf-select", 0)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["selected_sources"]) <= {"a", "b"} and metrics["selected_sources"]
    assert len(metrics["selected_sources_by_epoch"]) == 2
    assert metrics["val_acc"] >= metrics["all_sources_val_acc"]
    assert (out / "test_predictions.csv").exists() and (out / "history.csv").exists()

    # the amcf result it published is run_amcf_variant's, byte for byte (the callback only
    # evaluates)
    alone = dataclasses.replace(setting, results_dir=tmp_path / "alone",
                                work_dir=tmp_path / "alone-work")
    plain = run_amcf_variant(alone, 0)
    shared = setting.out_dir("amcf", 0)
    for name in ("metrics.json", "history.csv", "test_predictions.csv"):
        assert (shared / name).read_bytes() == (plain / name).read_bytes(), name
    history = (plain / "history.csv").read_text().splitlines()
    header, rows = history[0].split(","), [r.split(",") for r in history[1:]]
    test_acc = {int(r[0]): float(r[header.index("test_acc")]) for r in rows}
    # all sources summed gives AMCF's test accuracy, epoch by epoch
    assert metrics["all_sources_test_acc"] == test_acc[metrics["selected_epoch"]]
    # a rerun reuses the finished run and publishes the same bytes
    before = (out / "metrics.json").read_bytes()
    run_amcf_and_select(setting, 0)
    assert (out / "metrics.json").read_bytes() == before


def test_with_test_eval_improved_only_selectable_epochs_read_test():
    config = CONFIG.model_copy(update={"test_eval": "improved"})
    tracker = SubsetSelection([Member(1), Member(2)], _splits(), config)
    first, second = tracker(1), tracker(2)  # the same models: validation does not improve
    assert first["test_acc"] is not None and second["test_acc"] is None
    summary = tracker.summary(["a", "b"])
    assert summary["selected_epoch"] == 1 and summary["test_acc"] == first["test_acc"]
    assert summary["best_test_acc"] is None
