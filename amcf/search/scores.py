"""How a short fitness run is turned into one number.

A fitness run trains for a few epochs and measures, after each, the fused prediction's
validation accuracy ``acc_e`` and mean cross-entropy ``L_e``. The score of the run is the
best over those epochs of:

- ``"accuracy"``: ``acc_e`` (the paper's fitness, and the default). On a small validation
  split it takes few distinct values (multiples of 1/n), so many schemes tie;
- ``"loss"``: ``-L_e`` (higher is better), a continuous value that separates them;
- ``"accuracy+loss"``: ``acc_e + 1 / (2 n (1 + L_e))`` with n the number of validation
  images. Accuracies differ by at least 1/n and the tie term lies in (0, 1/(2n)], so the
  order is lexicographic: a higher accuracy always wins, and among equal accuracies the
  lower loss wins (the term falls as L_e grows). A fixed weight such as ``acc - 1e-3 * L``
  would not be safe: a loss above 1/(1e-3 n) could outweigh a whole validation image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amcf.train.config import FITNESS_SCORES as SCORES

DEFAULT_SCORE = SCORES[0]


def check_score(score: Any) -> str:
    if score not in SCORES:
        raise ValueError(f"unknown fitness score {score!r}; set search.fitness.score to one of "
                         f"{list(SCORES)}")
    return score


def score_value(score: str, val_acc: Sequence[float], val_loss: Sequence[float],
                num_val: int) -> float:
    """The fitness of one run from its per-epoch validation accuracies and losses."""
    check_score(score)
    if not val_acc or len(val_acc) != len(val_loss):
        raise ValueError(f"need one validation accuracy and loss per epoch, got {len(val_acc)} "
                         f"accuracies and {len(val_loss)} losses")
    if num_val < 1:
        raise ValueError(f"num_val must be the number of validation images (>= 1), got {num_val}")
    if score == "accuracy":
        return float(max(val_acc))
    if score == "loss":
        return float(max(-loss for loss in val_loss))
    return float(max(acc + 1.0 / (2 * num_val * (1.0 + loss))
                     for acc, loss in zip(val_acc, val_loss, strict=True)))
