"""``test_eval: selected``: the test split read only at the epochs a run can report.

Model selection reports the test accuracy of the epoch chosen on fused validation accuracy,
each member's at the epoch chosen on its own validation accuracy, and the last epoch's. With
``test_eval: every`` the trainer evaluates the test split after every epoch to have those few
numbers (and the best-over-epochs maximum of the paper's protocol). Here it instead keeps a
copy of the weights whenever a validation accuracy improves, and evaluates the test split
once at the end for each epoch that selection reports: two or three passes in place of one
per epoch. The logits are those of the same weights on the same batches, so the reported
accuracies and predictions are the bits ``every`` gives; only ``best_test_acc`` is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from amcf.train.evaluate import accuracies

State = dict[str, torch.Tensor]
# (fused predictions, per-model predictions, labels) of the given models on the test split
TestPass = Callable[[Sequence[nn.Module]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def _copy(model: nn.Module) -> State:
    # clone() keeps each tensor's strides, so weights loaded back compute the same bits
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class Selectable:
    """The weights of the epochs that selection may still report, kept as training goes."""

    fused_epoch: int | None = None
    fused_states: list[State] | None = None
    member_epochs: list[int | None] = field(default_factory=list)
    member_states: list[State | None] = field(default_factory=list)

    def observe(self, models: Sequence[nn.Module], epoch: int, val: tuple[float, list[float]],
                history: Sequence[dict[str, Any]]) -> None:
        """Keep the weights of ``epoch`` where its validation accuracies beat every earlier
        epoch's (strictly, as selection does: the first epoch wins a tie). ``history`` holds
        the earlier epochs' rows only."""
        if not self.member_epochs:
            self.member_epochs = [None] * len(models)
            self.member_states = [None] * len(models)
        if not history or val[0] > max(r["val_acc"] for r in history):
            self.fused_epoch, self.fused_states = epoch, [_copy(m) for m in models]
        for j, acc in enumerate(val[1]):
            if not history or acc > max(r[f"val_acc_m{j}"] for r in history):
                self.member_epochs[j] = epoch
                # the same tensors as the fused copy when both improved: no second copy
                self.member_states[j] = (self.fused_states[j] if self.fused_epoch == epoch
                                         else _copy(models[j]))

    def state_dict(self) -> dict[str, Any]:
        return {"fused_epoch": self.fused_epoch, "fused_states": self.fused_states,
                "member_epochs": self.member_epochs, "member_states": self.member_states}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Selectable:
        return cls() if state is None else cls(**state)

    def evaluate(self, models: Sequence[nn.Module], history: list[dict[str, Any]],
                 test_pass: TestPass) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Fill the test columns of the rows selection reports: the last epoch's (the models as
        they are), the fused selection's and each member's. Returns the fused test predictions
        of the selected epoch, the labels and the number of passes; the models end as they
        began (the last epoch's weights)."""
        rows = {r["epoch"]: r for r in history}
        last = history[-1]
        fused, members, labels = test_pass(models)
        _fill(last, fused, members, labels)
        passes = 1
        best_predictions = fused
        live = [_copy(m) for m in models]
        try:
            if self.fused_epoch is not None and self.fused_epoch != last["epoch"]:
                for m, state in zip(models, self.fused_states, strict=True):
                    m.load_state_dict(state)
                best_predictions, members, labels = test_pass(models)
                _fill(rows[self.fused_epoch], best_predictions, members, labels)
                passes += 1
            for j, epoch in enumerate(self.member_epochs):
                if epoch is None or rows[epoch].get(f"test_acc_m{j}") is not None:
                    continue
                models[j].load_state_dict(self.member_states[j])
                _, alone, labels = test_pass([models[j]])
                rows[epoch][f"test_acc_m{j}"] = accuracies(alone[0], alone, labels)[1][0]
                passes += 1
        finally:
            for m, state in zip(models, live, strict=True):
                m.load_state_dict(state)
        return best_predictions, labels, passes


def _fill(row: dict[str, Any], fused: torch.Tensor, members: torch.Tensor,
          labels: torch.Tensor) -> None:
    # the arithmetic of every epoch's test pass in fit, so the numbers are the same bits
    row["test_acc"], member_acc = accuracies(fused, members, labels)
    for j, acc in enumerate(member_acc):
        row[f"test_acc_m{j}"] = acc
