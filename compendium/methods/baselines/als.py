"""ALS: the layer scheme of one source model chosen by a genetic algorithm.

The comparison is fair only if ALS sees what AMLS sees: the same fitness (a short
collaborative fine-tuning run scored on the validation split, here with K = 1, where the
MC-loss is plain cross-entropy), the same range of k ([0, num_layers - 1]: the last layer and
the head always train) and the same number of fitness calls as the particle swarm
(particles * (iterations + 1): every initial particle plus one evaluation per particle per
iteration; 60 with the paper's 10 and 5).
"""

from __future__ import annotations

import os
from typing import Any

from amcf.amls import run_amls
from compendium.methods.baselines._genetic import genetic_search
from compendium.methods.entry import Method


def als_budget(particles: int = 10, iterations: int = 5) -> int:
    """The number of fitness calls AMLS makes with these swarm settings."""
    if particles < 1 or iterations < 0:
        raise ValueError(f"need particles >= 1 and iterations >= 0, got {particles}, "
                         f"{iterations}")
    return particles * (iterations + 1)


def als_search(source: Any, splits: Any, train_config: Any, *, particles: int = 10,
               iterations: int = 5, seed: int = 0, state_path: str | os.PathLike | None = None,
               freeze_bn_stats: bool = False, **ga_options: Any) -> Any:
    """Run :func:`compendium.methods.baselines._genetic.genetic_search` over k for one
    ``source`` (a SourceSpec).

    The search goes through :func:`amcf.amls.run_amls` with the GA in place of the swarm, so
    the fitness, the range of k and the state-file checks are AMLS's own. ``ga_options`` go
    to the GA unchanged (population, mutation_rate...). Returns its SearchResult;
    ``result.best[0]`` is the number of bottom layers to freeze.
    """
    # the models (timm, torchvision) load when ALS runs: the report, which reads the
    # registry of methods, runs none
    from amcf.models.build import SourceSpec

    if not isinstance(source, SourceSpec):
        raise ValueError("ALS searches one source: pass a single SourceSpec")
    settings = {
        "low": 0,
        "budget": als_budget(particles, iterations),
        "seed": seed,
        # the memo refuses a state file written for another target, source or recipe
        "context": {"method": "als", "dataset": splits.name, "source": source.model_dump(),
                    "freeze_bn_stats": freeze_bn_stats, "train": train_config.identity()},
        **ga_options,
    }
    # K = 1: the MC-loss is plain cross-entropy whatever lam is
    return run_amls([source], splits, settings, train_config, lam=0.0, state_path=state_path,
                    freeze_bn_stats=freeze_bn_stats, search=genetic_search)


METHODS = (Method("als", "ALS (genetic layer search)", "baseline", order=70, run="als"),)
