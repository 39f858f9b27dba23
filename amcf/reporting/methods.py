"""The method table: one place that maps a result directory's method id to the name a reader
sees and to its family (baseline / ablation / amcf).

Ids are directory names under ``results/<target>/``. A template entry holds one ``{}`` slot
(a source name or a hyper-parameter value), so ``finetune-mnist`` and ``finetune-animals``
share one row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FAMILIES = ("baseline", "ablation", "amcf")


@dataclass(frozen=True)
class MethodInfo:
    id: str
    label: str
    family: str
    single_source: bool = False  # a candidate for "best single-source baseline"
    order: int = 0  # position in tables: baselines first, AMCF last


# (id template, label template, family, single-source candidate)
_TABLE: list[tuple[str, str, str, bool]] = [
    ("scratch", "Train from scratch", "baseline", False),
    ("finetune-{}", "Fine-tune ({})", "baseline", True),
    ("linear-{}", "Linear probe ({})", "baseline", True),
    ("l2sp", "L2-SP (best source)", "baseline", False),
    ("childtune-f", "Child-Tuning (task-free)", "baseline", False),
    ("childtune-d", "Child-Tuning (task-driven)", "baseline", False),
    ("als", "ALS (genetic layer search)", "baseline", False),
    ("adafilter", "AdaFilter", "baseline", False),
    ("ensemble", "Ensemble of fine-tuned sources", "baseline", False),
    ("amcf-lam{}", "AMCF, lambda = {}", "ablation", False),
    ("amcf-full", "AMCF, full fine-tuning scheme", "ablation", False),
    ("amcf-random", "AMCF, random scheme", "ablation", False),
    ("amcf-k{}", "AMCF, K = {}", "ablation", False),
    ("amcf-dml", "AMCF with DML (KL) term", "ablation", False),
    ("amcf", "AMCF", "amcf", False),
]


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(re.escape(template).replace(r"\{\}", r"(.+)") + r"\Z")


def method_info(method_id: str) -> MethodInfo:
    """Look ``method_id`` up in the method table (exact ids win over templates)."""
    for order, (template, label, family, single) in enumerate(_TABLE):
        if "{}" not in template and template == method_id:
            return MethodInfo(method_id, label, family, single, order)
    for order, (template, label, family, single) in enumerate(_TABLE):
        match = _pattern(template).match(method_id) if "{}" in template else None
        if match:
            return MethodInfo(method_id, label.format(match.group(1)), family, single, order)
    known = ", ".join(t.replace("{}", "<x>") for t, *_ in _TABLE)
    raise ValueError(
        f"unknown method id {method_id!r}: the results directory holds a method the report does "
        f"not know. Rename the directory to one of: {known}; or add a row to "
        "amcf/reporting/methods.py:_TABLE (id, label, family, single-source)."
    )


def method_table() -> list[tuple[str, str, str, bool]]:
    """The table itself (id template, label template, family, single-source candidate)."""
    return list(_TABLE)
