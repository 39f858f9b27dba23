"""The multi-source collaborative loss (MC-loss) and the fused prediction.

For K models with logits z_j (B x C) and labels y::

    L = sum_j CE(z_j, y) + lam * (1/B) * sum_b (1/K) * sum_j || z_{j,b} - zbar_b ||_2
    zbar_b = (1/K) * sum_j z_{j,b}

The norm is the plain Euclidean norm of logits, and zbar is *not* detached, exactly as in
the paper. The authors' script writes CE as ``-sum(y * log(softmax(z) + 1e-8)) / B``;
``F.cross_entropy`` is the same quantity without the epsilon and without its underflow.
docs/method.md ("The collaborative loss") explains the choices; tests/test_loss.py checks
them against values worked out by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def _stack(logits: Sequence[Tensor]) -> Tensor:
    if len(logits) == 0:
        raise ValueError("logits must hold at least one (B, C) tensor, one per model")
    shapes = {tuple(z.shape) for z in logits}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every model's logits must share one (B, C) shape, got {sorted(shapes)}")
    return torch.stack(list(logits))  # (K, B, C)


def collaborative_penalty(logits: Sequence[Tensor]) -> Tensor:
    """Mean over the batch of (1/K) sum_j ||z_j - zbar||_2 (zero when K = 1)."""
    z = _stack(logits)
    zbar = z.mean(dim=0, keepdim=True)
    # The norm's gradient is undefined where z_j == zbar exactly (always so for K = 1); the
    # tiny epsilon inside the square root keeps it finite without changing the value visibly.
    dist = ((z - zbar).pow(2).sum(dim=-1) + 1e-12).sqrt()
    if z.shape[0] == 1:
        return dist.sum() * 0.0
    return dist.mean(dim=0).mean()


def collaborative_loss(logits: Sequence[Tensor], target: Tensor, lam: float = 0.2) -> Tensor:
    """The MC-loss: each model's cross-entropy plus ``lam`` times the pull towards the mean.

    K = 1 reduces to plain cross-entropy.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    z = _stack(logits)
    ce = sum(F.cross_entropy(zj, target) for zj in z)
    if lam == 0 or z.shape[0] == 1:
        return ce
    return ce + lam * collaborative_penalty(logits)


def mutual_learning_loss(
    logits: Sequence[Tensor], target: Tensor, lam: float = 1.0, temperature: float = 1.0
) -> Tensor:
    """Deep Mutual Learning (Zhang et al., CVPR 2018), the ablation that replaces the MC term.

    Each model j adds ``lam * mean_{i != j} KL(p_i || p_j)``, with the peers' distributions
    p_i detached, as DML trains each student against its peers' current predictions.
    """
    z = _stack(logits)
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


def fused_logits(logits: Sequence[Tensor]) -> Tensor:
    """AMCF's prediction: the sum of the models' logits (argmax of it is the fused class)."""
    return _stack(logits).sum(dim=0)
