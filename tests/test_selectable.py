"""test_eval "selected": the test split read after training, at the epochs selection reports
only, gives the bits of reading it every epoch (amcf/train/selectable.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from amcf.train.selectable import Selectable

# a high learning rate on small data: validation accuracy goes up and down, so the fused and
# the members' selected epochs differ from each other and from the last
RECIPE = dict(epochs=6, batch_size=64, lr=0.3, progress=False, checkpoint_every=1)


def _models(make_cnn):
    return [make_cnn(seed=0), make_cnn(seed=1, width=8), make_cnn(seed=2)]


def _selected_rows(result):
    """The (epoch, column) -> value of every test number selection reports."""
    m, h = result.metrics, {r["epoch"]: r for r in result.history}
    out = {(m["selected_epoch"], "test_acc"): h[m["selected_epoch"]]["test_acc"],
           (len(h), "test_acc"): h[len(h)]["test_acc"]}
    for j, member in enumerate(m["members"]):
        out[(member["selected_epoch"], f"test_acc_m{j}")] = member["test_acc"]
        out[(len(h), f"test_acc_m{j}")] = h[len(h)][f"test_acc_m{j}"]
    return out


def test_selected_reports_the_bits_of_every_epoch(digits, make_cnn, tmp_path):
    every_models, selected_models = _models(make_cnn), _models(make_cnn)
    every = fit(every_models, digits, TrainConfig(**RECIPE), out_dir=tmp_path / "every")
    selected = fit(selected_models, digits, TrainConfig(**RECIPE, test_eval="selected"),
                   out_dir=tmp_path / "selected")

    epochs = {every.selected_epoch, *(m["selected_epoch"] for m in every.metrics["members"])}
    assert len(epochs) > 1 and RECIPE["epochs"] not in {every.selected_epoch}, (
        "the recipe no longer separates the selected epochs; the test would cover less")
    assert _selected_rows(selected) == _selected_rows(every)
    assert torch.equal(selected.test_predictions, every.test_predictions)
    assert (tmp_path / "selected" / "test_predictions.csv").read_bytes() == (
        tmp_path / "every" / "test_predictions.csv").read_bytes()
    strip = ("best_test_acc", "identity")
    for a, b in [(selected.metrics, every.metrics),
                 *zip(selected.metrics["members"], every.metrics["members"], strict=True)]:
        assert {k: v for k, v in a.items() if k not in strip + ("members",)} == {
            k: v for k, v in b.items() if k not in strip + ("members",)}
        assert a["best_test_acc"] is None and b["best_test_acc"] is not None
    # the models end with the last epoch's weights, as fit promises
    for x, y in zip(selected_models, every_models, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(x.state_dict().values(),
                                                     y.state_dict().values(), strict=True))
    # a pass for the last epoch, the fused selection and each member selected elsewhere
    last = RECIPE["epochs"]
    expected = 1 + (every.selected_epoch != last) + sum(
        m["selected_epoch"] not in (every.selected_epoch, last) for m in every.metrics["members"])
    assert selected.breakdown["test_evaluations"] == expected < RECIPE["epochs"]
    assert every.breakdown["test_evaluations"] == RECIPE["epochs"]
    # the history.csv on disk holds the numbers filled in after training
    text = (tmp_path / "selected" / "history.csv").read_text().splitlines()
    assert len(text) == last + 1 and text[-1].split(",")[4] != ""


class _Kill(Exception):
    pass


def test_selected_resumes_bit_identically(digits, make_cnn, tmp_path):
    config = TrainConfig(**RECIPE, test_eval="selected")
    whole = fit(_models(make_cnn), digits, config, out_dir=tmp_path / "whole")

    def kill(epoch, row):
        if epoch == 4:
            raise _Kill

    with pytest.raises(_Kill):
        fit(_models(make_cnn), digits, config, out_dir=tmp_path / "cut", callback=kill)
    resumed = fit(_models(make_cnn), digits, config, out_dir=tmp_path / "cut")
    assert resumed.resumed_from_epoch == 4 and resumed.metrics == whole.metrics
    for name in ("test_predictions.csv", "history.csv", "metrics.json"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


class _Constant(nn.Module):
    """A 'model' whose one weight is the class it predicts for every image."""

    def __init__(self, value: float):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(value))


def test_each_selected_epoch_is_read_with_its_own_weights():
    models = [_Constant(0.0), _Constant(0.0)]
    labels = torch.tensor([0, 1, 2, 3])
    # validation accuracies (fused, [member 0, member 1]) of epochs 1..4: fused best at 2,
    # member 0 best at 3, member 1 at 1 (ties later do not count), the last epoch is 4
    vals = {1: (0.2, [0.1, 0.5]), 2: (0.6, [0.2, 0.5]), 3: (0.4, [0.7, 0.1]),
            4: (0.5, [0.3, 0.5])}
    keep, history = Selectable(), []
    for epoch, val in vals.items():
        for m in models:  # an epoch's weights: its number for member 0, ten times it for 1
            m.w.data.fill_(epoch)
        models[1].w.data.fill_(10 * epoch)
        keep.observe(models, epoch, val, history)
        history.append({"epoch": epoch, "val_acc": val[0], "test_acc": None,
                        **{f"val_acc_m{j}": a for j, a in enumerate(val[1])},
                        **{f"test_acc_m{j}": None for j in range(2)}})
    seen = []

    def test_pass(some):
        # predicts class w % 4 for member 0's weights, w // 10 % 4 for member 1's
        weights = [int(m.w.item()) for m in some]
        seen.append(weights)
        preds = torch.stack([torch.full((4,), (w if w < 10 else w // 10) % 4) for w in weights])
        return preds[0], preds, labels

    predictions, got_labels, passes = keep.evaluate(models, history, test_pass)
    # last epoch (4, 40), fused at epoch 2 (2, 20), member 0 alone at 3, member 1 alone at 1
    assert seen == [[4, 40], [2, 20], [3], [10]]
    assert passes == 4 and torch.equal(got_labels, labels)
    assert torch.equal(predictions, torch.full((4,), 2))
    rows = {r["epoch"]: r for r in history}
    assert rows[2]["test_acc"] == 0.25 and rows[4]["test_acc"] == 0.25
    assert rows[3]["test_acc_m0"] == 0.25 and rows[1]["test_acc_m1"] == 0.25
    assert rows[1]["test_acc"] is None and rows[3]["test_acc"] is None
    assert [m.w.item() for m in models] == [4.0, 40.0]  # the last epoch's weights again
