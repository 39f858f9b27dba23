"""L2-SP: fine-tuning with an L2 pull towards the pretrained weights.

Li, Grandvalet and Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018. Their penalty (their eq. for Omega(w) with the starting point as
reference) is::

    alpha/2 * ||w_S - w0_S||^2  +  beta/2 * ||w_new||^2

where w_S are the weights shared with the source network (here: every trainable parameter
except the classifier head), w0_S their pretrained values, and w_new the new head. The
penalty *replaces* plain weight decay, so the model's optimiser must not also decay those
weights: :attr:`L2SP.weight_decay` is 0 and the trainer uses it instead of
``TrainConfig.weight_decay`` (see :func:`optimizer_weight_decay`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from amcf.objective import MCLoss, Objective
from compendium.methods.baselines._build import build_models
from compendium.methods.baselines._params import split_trainable
from compendium.methods.entry import Method, NonNegative, Options, grid


def optimizer_weight_decay(objective: Objective, default: float) -> float:
    """The weight decay a model's optimiser should use under ``objective``.

    An objective that regularises the weights itself (L2-SP) sets ``weight_decay`` to a
    number (0.0) so that the optimiser does not regularise them a second time; otherwise the
    trainer's configured ``default`` applies.
    """
    value = getattr(objective, "weight_decay", None)
    return default if value is None else float(value)


class L2SP(MCLoss):
    """K-model objective: the loss of :class:`~amcf.objective.MCLoss` (``lam`` = 0:
    independent CE) plus the
    L2-SP penalty summed over the models, each pulled to its own starting point.

    The starting point is captured in :meth:`setup` (the models as the trainer receives them)
    and saved in :meth:`state_dict`, so a resumed run keeps pulling towards the pretrained
    weights, not towards the weights at the checkpoint.
    """

    name = "l2sp"
    #: read by the trainer: the optimiser's weight decay is replaced by the penalty.
    weight_decay = 0.0

    def __init__(self, alpha: float = 0.01, beta: float = 0.01, lam: float = 0.0):
        super().__init__(lam=lam)
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got alpha={alpha}, beta={beta}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self._start: list[dict[str, Tensor]] | None = None
        self._restored = False

    def setup(self, models: Sequence[nn.Module], generator: torch.Generator) -> None:
        if self._restored:
            return  # a resumed run keeps the starting point saved with the checkpoint
        self._start = [
            {n: p.detach().clone() for n, p in split_trainable(m)[0].items()} for m in models
        ]

    def penalty(self, models: Sequence[nn.Module]) -> Tensor | float:
        if self._start is None:
            raise RuntimeError("L2SP.penalty called before setup(models, generator)")
        if len(models) != len(self._start):
            raise ValueError(
                f"L2SP was set up for {len(self._start)} models, got {len(models)}"
            )
        total: Tensor | float = 0.0
        for model, start in zip(models, self._start, strict=True):
            body, head = split_trainable(model)
            missing = set(body) - set(start)
            if missing:
                raise ValueError(
                    f"parameters {sorted(missing)[:3]} have no starting point: the set of "
                    "trainable parameters changed after setup"
                )
            for n, p in body.items():
                if start[n].device != p.device:  # a restored start arrives on the CPU
                    start[n] = start[n].to(p.device)
            sp = sum(((p - start[n]) ** 2).sum() for n, p in body.items())
            new = sum((p**2).sum() for p in head.values())
            total = total + 0.5 * self.alpha * sp + 0.5 * self.beta * new
        return total

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "beta": self.beta, "start": self._start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state["alpha"], state["beta"]) != (self.alpha, self.beta):
            raise ValueError(
                f"checkpoint was written with alpha={state['alpha']}, beta={state['beta']}; "
                f"this objective has alpha={self.alpha}, beta={self.beta}. Fix: resume with "
                "the same settings or start a new output folder."
            )
        self._start = state["start"]
        self._restored = self._start is not None


class L2SPOptions(Options):
    alpha: grid(NonNegative) = 0.01  # pull of the pretrained layers to their start
    beta: grid(NonNegative) = 0.01  # weight decay of the new head


def l2sp(sources: Any, num_classes: int, *, in_chans: int | None = None,
         alpha: float = 0.01, beta: float = 0.01) -> tuple[list, L2SP]:
    objective = L2SP(alpha=alpha, beta=beta)
    return build_models(sources, num_classes, in_chans), objective


METHODS = (Method("l2sp", "L2-SP (best source)", "baseline", order=40, run="l2sp", recipe=l2sp,
                  options=L2SPOptions, on="best"),)
