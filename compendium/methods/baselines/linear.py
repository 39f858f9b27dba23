"""Linear probe of each source: only the new head trains on top of the frozen source."""

from __future__ import annotations

from typing import Any

from amcf.layers import freeze_bottom, num_layers
from amcf.objective import MCLoss
from compendium.methods.baselines._build import build_models
from compendium.methods.entry import Method


def linear_probe(sources: Any, num_classes: int, *, in_chans: int | None = None,
                 freeze_bn_stats: bool = False) -> tuple[list, MCLoss]:
    """Only the new head trains on top of each frozen pretrained source (lam = 0)."""
    models = build_models(sources, num_classes, in_chans)
    for m in models:
        freeze_bottom(m, num_layers(m), freeze_bn_stats=freeze_bn_stats)
    return models, MCLoss(lam=0.0)


METHODS = (Method("linear-{}", "Linear probe ({})", "baseline", order=30, run="linear",
                  reference=True, recipe=linear_probe),)
