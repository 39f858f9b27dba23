"""What a training run optimises: the seam between the trainer and the methods.

:func:`amcf.train.fit` runs one loop for every method: the same data, augmentation,
schedule, checkpoint selection and evaluation. A method differs only in the hooks of an
:class:`Objective`: the loss over the K models' logits, a penalty on the weights (L2-SP), a
change of the gradients before the step (Child-Tuning), work before each epoch
(Child-Tuning-D's Fisher information), and extra state to checkpoint for resume.
:class:`MCLoss` is AMCF's own objective, the multi-source collaborative loss.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from amcf.loss import collaborative_loss


class Objective:
    """The hooks :func:`amcf.train.fit` calls; every one but :meth:`loss` does nothing by
    default. A method subclasses it (or :class:`MCLoss`, to keep the MC-loss)."""

    name = "objective"
    weight_decay: float | None = None  # None: the optimiser uses the recipe's weight decay

    def loss(self, logits: Sequence[Tensor], target: Tensor) -> Tensor:
        """The training loss of one batch, from the K models' logits (B x C each)."""
        raise NotImplementedError(f"{type(self).__name__} must define loss(logits, target)")

    def penalty(self, models: Sequence[nn.Module]) -> Tensor | float:
        """A term added to the loss that depends on the weights only (0 by default)."""
        return 0.0

    def trainable_parameters(self, model: nn.Module) -> Iterator[nn.Parameter]:
        """The parameters that the model's optimiser updates."""
        return (p for p in model.parameters() if p.requires_grad)

    def setup(self, models: Sequence[nn.Module], generator: torch.Generator) -> None:
        """Called once, after the models are built and before the first epoch."""

    def before_epoch(
        self, models: Sequence[nn.Module], epoch: int, batches: Iterable[tuple[Tensor, Tensor]]
    ) -> None:
        """Called at the start of every epoch with a fresh pass over the training batches."""

    def after_backward(self, models: Sequence[nn.Module]) -> None:
        """Called after ``loss.backward()`` and before the optimisers step."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class MCLoss(Objective):
    """AMCF's objective: the MC-loss with weight ``lam`` (0 gives independent fine-tuning)."""

    name = "amcf"

    def __init__(self, lam: float = 0.2):
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.lam = lam

    def loss(self, logits: Sequence[Tensor], target: Tensor) -> Tensor:
        return collaborative_loss(logits, target, self.lam)
