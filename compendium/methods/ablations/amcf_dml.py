"""The Deep Mutual Learning ablation: AMCF with the MC term replaced by DML's KL term.

Zhang, Xiang, Hospedales and Lu, "Deep Mutual Learning", CVPR 2018: each model adds the mean
KL divergence from its peers' (detached) predictions to its own. DML updates the students one
after another; here they step together after one backward pass, which with detached peers
gives each model the same gradient as its own DML step against the peers' current outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from amcf.loss import stack_logits
from amcf.objective import MCLoss
from compendium.methods.entry import Method, Options


def mutual_learning_loss(
    logits: Sequence[Tensor], target: Tensor, lam: float = 1.0, temperature: float = 1.0
) -> Tensor:
    """Deep Mutual Learning (Zhang et al., CVPR 2018), the ablation that replaces the MC term.

    Each model j adds ``lam * mean_{i != j} KL(p_i || p_j)``, with the peers' distributions
    p_i detached, as DML trains each student against its peers' current predictions.
    """
    z = stack_logits(logits)
    k = z.shape[0]
    ce = sum(F.cross_entropy(zj, target) for zj in z)
    if k == 1 or lam == 0:
        return ce
    log_p = F.log_softmax(z / temperature, dim=-1)
    kl = z.new_zeros(())
    for j in range(k):
        for i in range(k):
            if i != j:
                peer = log_p[i].detach()
                kl = kl + F.kl_div(log_p[j], peer, log_target=True, reduction="batchmean")
    return ce + lam * (temperature**2) * kl / (k - 1)


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


class DMLOptions(Options):
    lam: float = Field(1.0, ge=0)  # weight of the KL term
    temperature: float = Field(1.0, gt=0)


METHODS = (Method("amcf-dml", "AMCF with DML (KL) term", "ablation", order=140, run="amcf-dml",
                  options=DMLOptions, searched=True),)
