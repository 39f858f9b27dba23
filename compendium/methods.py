"""The method table: every method of the compendium, one spelling each, read by every part.

A **run id** names what runs: it is what ``params.yaml`` lists under ``baselines.methods`` and
``ablations.methods``, the key of a baseline's recipe in :mod:`compendium.baselines.recipes` and of
its ``options``, and what :mod:`compendium.experiments` dispatches on. A run publishes one or more
**result ids**, the directories under ``results/<target>/[<group>/]``; most equal their run id,
a few are templates whose ``{}`` is filled when the run publishes:

- ``finetune`` publishes ``finetune-<source>`` for every source, and ``ensemble`` (their summed
  logits, from the same lam = 0 run); ``linear`` publishes ``linear-<source>``;
- ``amcf-lam`` publishes ``amcf-lam<lambda>`` for every lambda of the sweep, ``amcf-k``
  publishes ``amcf-k<K>`` for every smaller K;
- ``amcf`` publishes ``amcf`` and ``amcf-select`` (the same training, its fused prediction
  over the sources chosen on validation after every epoch).

Rows are in the order tables show them: baselines, ablations, AMCF last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FAMILIES = ("baseline", "ablation", "amcf")
# the pipeline's stage groups (results/<target>/<group>/) and the family each one runs
GROUPS = {"baselines": "baseline", "ablations": "ablation"}


@dataclass(frozen=True)
class Method:
    """One row: a result id (template), the label a reader sees, its family, the run that
    publishes it, and whether it is a candidate for the best single-source reference."""

    id: str
    label: str
    family: str
    run: str
    single_source: bool = False


METHODS: tuple[Method, ...] = (
    Method("scratch", "Train from scratch", "baseline", "scratch"),
    Method("finetune-{}", "Fine-tune ({})", "baseline", "finetune", single_source=True),
    Method("linear-{}", "Linear probe ({})", "baseline", "linear", single_source=True),
    Method("l2sp", "L2-SP (best source)", "baseline", "l2sp"),
    Method("childtune-f", "Child-Tuning (task-free)", "baseline", "childtune-f"),
    Method("childtune-d", "Child-Tuning (task-driven)", "baseline", "childtune-d"),
    Method("als", "ALS (genetic layer search)", "baseline", "als"),
    Method("adafilter", "AdaFilter", "baseline", "adafilter"),
    Method("ensemble", "Ensemble of fine-tuned sources", "baseline", "finetune"),
    Method("amcf-lam{}", "AMCF, lambda = {}", "ablation", "amcf-lam"),
    Method("amcf-full", "AMCF, full fine-tuning scheme", "ablation", "amcf-full"),
    Method("amcf-random", "AMCF, random scheme", "ablation", "amcf-random"),
    Method("amcf-k{}", "AMCF, K = {}", "ablation", "amcf-k"),
    Method("amcf-dml", "AMCF with DML (KL) term", "ablation", "amcf-dml"),
    # published by the amcf run too: its sources chosen on validation, from the same training
    Method("amcf-select", "AMCF, sources selected on validation", "amcf", "amcf"),
    Method("amcf", "AMCF", "amcf", "amcf"),
)


def runs(family: str) -> tuple[str, ...]:
    """The run ids of one family, in table order (each once)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    return tuple(dict.fromkeys(m.run for m in METHODS if m.family == family))


# The comparisons that decide the paper's question (does AMCF beat the best single source, the
# independent ensemble, and its own ablations of lambda and of the scheme?) run at every seed;
# the other methods may run on fewer (``few_seeds`` of the baselines and ablations stages).
DECISIVE = ("finetune-{}", "ensemble", "amcf-lam0", "amcf-full", "amcf-random", "amcf",
            "amcf-select")


def is_decisive(result_id: str) -> bool:
    """Whether a result id belongs to the decisive comparisons (run at every seed)."""
    return any(_pattern(d).match(result_id) if "{}" in d else d == result_id for d in DECISIVE)


BASELINE_RUNS = runs("baseline")
ABLATION_RUNS = runs("ablation")


@dataclass(frozen=True)
class MethodInfo:
    """A result id looked up in the table, its template filled in."""

    id: str
    label: str
    family: str
    run: str
    single_source: bool = False  # a candidate for "best single-source baseline"
    order: int = 0  # position in tables: baselines first, AMCF last


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.escape(template).replace(r"\{\}", r"(.+)") + r"\Z")


def method_info(result_id: str) -> MethodInfo:
    """Look a result id up in the table (exact ids win over templates)."""
    for order, m in enumerate(METHODS):
        if "{}" not in m.id and m.id == result_id:
            return MethodInfo(result_id, m.label, m.family, m.run, m.single_source, order)
    for order, m in enumerate(METHODS):
        match = _pattern(m.id).match(result_id) if "{}" in m.id else None
        if match:
            return MethodInfo(result_id, m.label.format(match.group(1)), m.family, m.run,
                              m.single_source, order)
    known = ", ".join(m.id.replace("{}", "<x>") for m in METHODS)
    raise ValueError(
        f"unknown method id {result_id!r}: the results directory holds a method the table does "
        f"not know. Rename the directory to one of: {known}; or add a row to "
        "compendium/methods.py:METHODS (result id, label, family, run id)."
    )
