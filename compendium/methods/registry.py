"""Every method of the compendium, one entry each, read from their files: the table the
report, the params check and the results' readers use.

Rows are in the order tables show them (``Method.order``): baselines, ablations, AMCF last.
A stage reads only its own family (:func:`compendium.methods.entry.discover`), so that an
edit to one baseline's file reruns the baselines, not every stage.
"""

from __future__ import annotations

from compendium.methods.entry import FAMILIES, Method, MethodInfo, discover, runs
from compendium.methods.entry import is_decisive as _is_decisive
from compendium.methods.entry import method_info as _method_info

BASELINES = discover("compendium.methods.baselines")
ABLATIONS = discover("compendium.methods.ablations")
PROPOSED = discover("compendium.methods.proposed")
METHODS: tuple[Method, ...] = tuple(sorted((*BASELINES, *ABLATIONS, *PROPOSED),
                                           key=lambda m: m.order))
_BY_FAMILY = {"baseline": BASELINES, "ablation": ABLATIONS, "amcf": PROPOSED}
# the pipeline's stage groups (results/<target>/<group>/) and the family each one runs
GROUPS = {"baselines": "baseline", "ablations": "ablation"}
BASELINE_RUNS = runs(BASELINES)
ABLATION_RUNS = runs(ABLATIONS)

__all__ = ["ABLATION_RUNS", "BASELINE_RUNS", "FAMILIES", "GROUPS", "METHODS", "MethodInfo",
           "family", "family_runs", "is_decisive", "method_info"]


def family(name: str) -> tuple[Method, ...]:
    """The entries of one family, in table order."""
    if name not in _BY_FAMILY:
        raise ValueError(f"unknown family {name!r}; choose one of {FAMILIES}")
    return _BY_FAMILY[name]


def family_runs(name: str) -> tuple[str, ...]:
    """The run ids of one family, in table order (each once)."""
    return runs(family(name))


def method_info(result_id: str) -> MethodInfo:
    """Look a result id up in the whole table (exact ids win over templates)."""
    return _method_info(result_id, METHODS)


def is_decisive(result_id: str) -> bool:
    """Whether a result id belongs to the decisive comparisons (run at every seed)."""
    return _is_decisive(result_id, METHODS)
