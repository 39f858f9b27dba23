"""The Deep Mutual Learning ablation: AMCF with the MC term replaced by DML's KL term.

Zhang, Xiang, Hospedales and Lu, "Deep Mutual Learning", CVPR 2018: each model adds the mean
KL divergence from its peers' (detached) predictions to its own. DML updates the students one
after another; here they step together after one backward pass, which with detached peers
gives each model the same gradient as its own DML step against the peers' current outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from amcf.loss import mutual_learning_loss
from amcf.objective import MCLoss


class DeepMutualLearning(MCLoss):
    """Sum of the models' CE plus ``lam`` * T^2 * mean peer KL (K = 1: plain CE)."""

    name = "dml"

    def __init__(self, lam: float = 1.0, temperature: float = 1.0):
        super().__init__(lam=lam)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    def loss(self, logits: Sequence[Tensor], target: Tensor) -> Tensor:
        return mutual_learning_loss(logits, target, self.lam, self.temperature)
