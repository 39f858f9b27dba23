"""Standard fine-tuning of each source (all layers), and their ensemble.

With lam = 0 the K models' losses are a plain sum of per-model cross-entropies and each
model has its own optimiser, so no gradient crosses between models: one K-model run *is* K
standalone fine-tunings on the same batches (``finetune-<source>``, each selected on its own
validation accuracy) and, through the fused prediction, the ensemble (``ensemble``), the
control that separates "more models" from "collaboration".
"""

from __future__ import annotations

from typing import Any

from amcf.objective import MCLoss
from compendium.methods.baselines._build import build_models
from compendium.methods.entry import Method


def finetune(sources: Any, num_classes: int, *, in_chans: int | None = None
             ) -> tuple[list, MCLoss]:
    """Every layer of every pretrained source trains, each model on its own (lam = 0)."""
    return build_models(sources, num_classes, in_chans), MCLoss(lam=0.0)


METHODS = (
    Method("finetune-{}", "Fine-tune ({})", "baseline", order=20, run="finetune", reference=True,
           decisive=("finetune-{}",), recipe=finetune),
    Method("ensemble", "Ensemble of fine-tuned sources", "baseline", order=90, run="finetune",
           decisive=("ensemble",)),
)
