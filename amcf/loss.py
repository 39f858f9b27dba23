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


def stack_logits(logits: Sequence[Tensor]) -> Tensor:
    """The K models' logits as one (K, B, C) tensor, their shapes checked."""
    if len(logits) == 0:
        raise ValueError("logits must hold at least one (B, C) tensor, one per model")
    shapes = {tuple(z.shape) for z in logits}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"every model's logits must share one (B, C) shape, got {sorted(shapes)}")
    return torch.stack(list(logits))  # (K, B, C)


def collaborative_penalty(logits: Sequence[Tensor]) -> Tensor:
    """Mean over the batch of (1/K) sum_j ||z_j - zbar||_2 (zero when K = 1)."""
    z = stack_logits(logits)
    zbar = z.mean(dim=0, keepdim=True)
    # vector_norm, not pow(2).sum().sqrt(): on the CPU torch.sqrt goes through MKL's vector
    # maths, whose last bits differ between Intel and AMD CPUs even under the numerical policy
    # (docs/numerics.md); vector_norm's bytes were the same on both. Where z_j == zbar exactly
    # (always so for K = 1) its gradient is zero.
    dist = torch.linalg.vector_norm(z - zbar, dim=-1)
    if z.shape[0] == 1:
        return dist.sum() * 0.0
    return dist.mean(dim=0).mean()


def collaborative_loss(logits: Sequence[Tensor], target: Tensor, lam: float = 0.2) -> Tensor:
    """The MC-loss: each model's cross-entropy plus ``lam`` times the pull towards the mean.

    K = 1 reduces to plain cross-entropy.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    z = stack_logits(logits)
    ce = sum(F.cross_entropy(zj, target) for zj in z)
    if lam == 0 or z.shape[0] == 1:
        return ce
    return ce + lam * collaborative_penalty(logits)


def fused_logits(logits: Sequence[Tensor]) -> Tensor:
    """AMCF's prediction: the sum of the models' logits (argmax of it is the fused class)."""
    return stack_logits(logits).sum(dim=0)
