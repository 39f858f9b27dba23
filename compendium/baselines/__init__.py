"""The baselines of the compendium, each run through :func:`amcf.train.fit`.

Mechanisms: :class:`L2SP` (Li et al., ICML 2018), :class:`ChildTuningF` / :class:`ChildTuningD`
(Xu et al., EMNLP 2021), :class:`AdaFilterNet` (Guo et al., AAAI 2020),
:class:`DeepMutualLearning` (Zhang et al., CVPR 2018). Recipes returning (models, objective):
:mod:`compendium.baselines.recipes`,
:data:`BASELINES` / :func:`build_baseline`; ALS: :func:`als_search`.
"""

from compendium.baselines.adafilter import (
    AdaFilterNet,
    GatedConvBN,
    GatePolicy,
    gumbel_sigmoid_gate,
)
from compendium.baselines.als import als_budget, als_search
from compendium.baselines.child_tuning import (
    ChildTuningD,
    ChildTuningF,
    fisher_information,
    top_fraction_mask,
)
from compendium.baselines.dml import DeepMutualLearning
from compendium.baselines.l2sp import L2SP, optimizer_weight_decay

# The recipe functions stay in compendium.baselines.recipes: names such as ``l2sp`` and
# ``adafilter`` are also this package's modules and must not be shadowed here.
from compendium.baselines.recipes import BASELINES, baseline_params, build_baseline

__all__ = [
    "BASELINES",
    "L2SP",
    "AdaFilterNet",
    "ChildTuningD",
    "ChildTuningF",
    "DeepMutualLearning",
    "GatePolicy",
    "GatedConvBN",
    "als_budget",
    "als_search",
    "baseline_params",
    "build_baseline",
    "fisher_information",
    "gumbel_sigmoid_gate",
    "optimizer_weight_decay",
    "top_fraction_mask",
]
