"""Train from scratch: the first source's architecture with random weights, seeded by the
run's seed so that runs repeat."""

from __future__ import annotations

from typing import Any

import torch

from amcf.objective import MCLoss
from compendium.methods.baselines._build import as_sources, build_models
from compendium.methods.entry import Method


def scratch(sources: Any, num_classes: int, *, in_chans: int | None = None,
            seed: int = 0) -> tuple[list, MCLoss]:
    """Random initialisation of each source's architecture, seeded so runs repeat."""
    specs = [s.model_copy(update={"weights": None}) for s in as_sources(sources)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        models = build_models(specs, num_classes, in_chans)
    return models, MCLoss(lam=0.0)


METHODS = (Method("scratch", "Train from scratch", "baseline", order=10, run="scratch",
                  recipe=scratch, seeded=True, on="first"),)
