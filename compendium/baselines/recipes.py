"""The baselines as ready-to-train (models, objective) pairs for :func:`amcf.train.fit`.

:data:`BASELINES` is keyed by the run ids of the method table (:mod:`compendium.methods`), the
names ``params.yaml`` uses. Every recipe builds one model per source (a single
:class:`~amcf.models.SourceSpec` is taken as a list of one) with a new ``num_classes``-way
head, and uses lam = 0 (no collaborative term):

- ``scratch``: the architectures with random weights (``weights=None``).
- ``finetune``: all layers of each pretrained source. With lam = 0 the K models' losses are
  a plain sum of per-model cross-entropies and each model has its own optimiser, so no
  gradient crosses between models: one K-model run *is* K standalone fine-tunings (on the
  same batches) and, through the fused prediction that fit reports, the ensemble.
- ``linear``: everything but the head frozen (``freeze_bottom(k=num_layers)``).
- ``l2sp``, ``childtune-f``, ``childtune-d``, ``adafilter``: the mechanisms of the modules
  beside this one.

ALS runs through :func:`compendium.baselines.als_search`; the ``amcf-dml`` ablation is AMCF's
models with :class:`~compendium.baselines.dml.DeepMutualLearning` as the objective.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from amcf.objective import MCLoss, Objective
from compendium.baselines.adafilter import AdaFilterNet
from compendium.baselines.child_tuning import ChildTuningD, ChildTuningF
from compendium.baselines.l2sp import L2SP

Recipe = tuple[list[nn.Module], Objective]


def _as_list(sources: Any) -> list:
    from amcf.models import SourceSpec

    if isinstance(sources, SourceSpec):
        return [sources]
    sources = list(sources)
    if not sources or not all(isinstance(s, SourceSpec) for s in sources):
        raise ValueError("sources must be a SourceSpec or a non-empty sequence of SourceSpec")
    return sources


def _build(sources: Any, num_classes: int, in_chans: int | None) -> list[nn.Module]:
    from amcf.models import build_model

    return [build_model(s, num_classes, in_chans=in_chans) for s in _as_list(sources)]


def scratch(sources: Any, num_classes: int, *, in_chans: int | None = None,
            seed: int = 0) -> Recipe:
    """Random initialisation of each source's architecture, seeded so runs repeat."""
    specs = [s.model_copy(update={"weights": None}) for s in _as_list(sources)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        models = _build(specs, num_classes, in_chans)
    return models, MCLoss(lam=0.0)


def finetune(sources: Any, num_classes: int, *, in_chans: int | None = None) -> Recipe:
    """Every layer of every pretrained source trains, each model on its own (lam = 0)."""
    return _build(sources, num_classes, in_chans), MCLoss(lam=0.0)


def linear_probe(sources: Any, num_classes: int, *, in_chans: int | None = None,
                 freeze_bn_stats: bool = False) -> Recipe:
    """Only the new head trains on top of each frozen pretrained source."""
    from amcf.layers import freeze_bottom, num_layers

    models = _build(sources, num_classes, in_chans)
    for m in models:
        freeze_bottom(m, num_layers(m), freeze_bn_stats=freeze_bn_stats)
    return models, MCLoss(lam=0.0)


def l2sp(sources: Any, num_classes: int, *, in_chans: int | None = None,
         alpha: float = 0.01, beta: float = 0.01) -> Recipe:
    objective = L2SP(alpha=alpha, beta=beta)
    return _build(sources, num_classes, in_chans), objective


def child_tuning_f(sources: Any, num_classes: int, *, in_chans: int | None = None,
                   p: float = 0.3) -> Recipe:
    objective = ChildTuningF(p=p)
    return _build(sources, num_classes, in_chans), objective


def child_tuning_d(sources: Any, num_classes: int, *, in_chans: int | None = None,
                   p: float = 0.3) -> Recipe:
    objective = ChildTuningD(p=p)
    return _build(sources, num_classes, in_chans), objective


def adafilter(sources: Any, num_classes: int, *, in_chans: int | None = None,
              hidden_size: int = 64, tau: float = 1.0, seed: int = 0) -> Recipe:
    """Each source wrapped in :class:`AdaFilterNet`; the policy's init is seeded."""
    models = _build(sources, num_classes, in_chans)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wrapped = [AdaFilterNet(m, hidden_size=hidden_size, tau=tau) for m in models]
    return wrapped, MCLoss(lam=0.0)


BASELINES: dict[str, Callable[..., Recipe]] = {
    "scratch": scratch,
    "finetune": finetune,
    "linear": linear_probe,
    "l2sp": l2sp,
    "childtune-f": child_tuning_f,
    "childtune-d": child_tuning_d,
    "adafilter": adafilter,
}


def baseline_params(name: str) -> list[str]:
    """The keyword settings a baseline accepts (besides sources, num_classes, in_chans)."""
    recipe = _lookup(name)
    return [p for p in inspect.signature(recipe).parameters
            if p not in ("sources", "num_classes", "in_chans")]


def _lookup(name: str) -> Callable[..., Recipe]:
    try:
        return BASELINES[name]
    except KeyError:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)} "
                         "(run ids of compendium.methods; ALS runs through "
                         "compendium.baselines.als_search)") from None


# the objectives behind the recipes whose settings are plain numbers: built alone (no model),
# they check a grid point's values in microseconds, before any training starts
_OBJECTIVES: dict[str, Callable[..., Objective]] = {
    "l2sp": L2SP, "childtune-f": ChildTuningF, "childtune-d": ChildTuningD,
}


def option_grid(name: str, options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every point of a baseline's settings grid, checked: a list is a grid axis, a scalar a
    one-point axis (so the old scalar form is a one-point grid).

    Points are the product of the axes in the recipe's signature order (for L2-SP, alpha
    before beta), each axis in its listed order, so "the first point" (which wins a tie)
    does not depend on how the settings were passed along. ``seed`` is not a setting: the
    run sets it.
    """
    accepted = [p for p in baseline_params(name) if p != "seed"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"baseline {name!r} has no setting {unknown}; it accepts {accepted}")
    axes = []
    for key in (p for p in accepted if p in options):
        values = options[key]
        values = list(values) if isinstance(values, list | tuple) else [values]
        if not values:
            raise ValueError(f"{name}.{key} is an empty grid; give a value or a list of at "
                             "least one value")
        axes.append([(key, v) for v in values])
    points = [dict(combo) for combo in itertools.product(*axes)]
    for point in points:
        if name in _OBJECTIVES:
            try:
                _OBJECTIVES[name](**point)
            except ValueError as err:
                raise ValueError(f"{name} setting {point}: {err}; fix the value in "
                                 f"baselines.options.{name}") from None
    return points


def build_baseline(name: str, sources: Any, num_classes: int, *, in_chans: int | None = None,
                   **params: Any) -> Recipe:
    """(models, objective) of baseline ``name``, checking ``params`` before building."""
    recipe = _lookup(name)
    unknown = sorted(set(params) - set(baseline_params(name)))
    if unknown:
        raise ValueError(f"baseline {name!r} has no setting {unknown}; it accepts "
                         f"{baseline_params(name)}")
    return recipe(sources, num_classes, in_chans=in_chans, **params)
