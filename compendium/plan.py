"""The analysis plan: which comparisons decide the paper's question, how they are tested, and
what counts as "no difference", fixed in ``params.yaml`` (``analysis_plan:``) before the results.

It lives in ``params.yaml`` rather than in a file of its own so that it travels with its
profile (``cp profiles/paper.yaml params.yaml`` brings the paper's targets and their plan
together), is checked with the rest by ``amcf params check``, and reaches the report notebook as
parameters like every other setting. Every training stage of a target and the report list it
under ``params:`` in ``dvc.yaml``, so ``dvc.lock`` records, in each of their entries, the plan
the results were produced under; :func:`compendium.pipeline.lock.plan_mismatches` finds the
entries produced under another plan (or before there was one). The plan in words:
docs/analysis-plan.md.

This module imports pydantic only: the report reads it without the params schema's imports.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# stands for each target's best single source, chosen on validation (compendium.report.stats)
BEST_SINGLE = "best-single-source"


def _pairs(mapping: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(a, b) for a, bs in mapping.items() for b in bs]


class AnalysisPlan(BaseModel):
    """The plan (see the module's doc). Accuracies are fractions: a margin of 0.01 is one
    percentage point."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the targets the conclusions are drawn on; params.yaml's `targets:` must be the same
    targets: list[str] = Field(min_length=1)
    # method a -> the methods b it is compared with (a - b, paired by seed); mappings rather
    # than lists of pairs because DVC unpacks a mapping of lists into notebook flags
    primary: dict[str, list[str]]
    secondary: dict[str, list[str]] = {}
    # ablation run ids whose runs AMCF is compared with descriptively (few seeds, no test):
    # a prefix covers its family, e.g. amcf-lam covers amcf-lam1 (a planned pair keeps its role)
    exploratory: list[str] = []
    # Holm's correction runs over the per-target rows of the primary and secondary pairs;
    # pooled rows and exploratory pairs are descriptive (an interval, no p-value, no verdict)
    alpha: float = Field(gt=0, lt=1)
    confidence: float = Field(gt=0, lt=1)
    # a difference whose whole interval lies within +-margin is "equivalent"
    equivalence_margin: float = Field(gt=0, lt=1)
    # the interval the verdicts' "what the interval excludes" and equivalence use: "bootstrap",
    # paired over seeds and test images (compendium.report.bootstrap), or "t", over seeds only;
    # a row without test predictions (a single source) falls back to its t interval
    interval: Literal["bootstrap", "t"] = "bootstrap"

    @field_validator("primary", "secondary", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        # a one-element list reaches the notebook as one flag value, i.e. a bare string
        if isinstance(value, dict):
            return {a: [bs] if isinstance(bs, str) else bs for a, bs in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AnalysisPlan:
        repeated = sorted({t for t in self.targets if self.targets.count(t) > 1})
        if repeated:
            raise ValueError(f"analysis_plan.targets repeats {repeated}; list each target once")
        if len(self.primary_pairs) != 1:
            raise ValueError(f"analysis_plan.primary must name exactly one comparison, got "
                             f"{self.primary_pairs}; e.g. primary: {{amcf: [ensemble]}}")
        pairs = self.primary_pairs + self.secondary_pairs
        same = [p for p in pairs if p[0] == p[1]]
        if same:
            raise ValueError(f"analysis_plan compares a method with itself: {same}")
        twice = sorted({p for p in pairs if pairs.count(p) > 1})
        if twice:
            raise ValueError(f"analysis_plan lists {twice} more than once; each comparison "
                             "is primary or secondary, not both")
        if any(a == BEST_SINGLE for a, _ in pairs):
            raise ValueError(f"analysis_plan: {BEST_SINGLE} may only be the second method of a "
                             "pair (it is each target's best single source)")
        return self

    @property
    def primary_pairs(self) -> list[tuple[str, str]]:
        return _pairs(self.primary)

    @property
    def secondary_pairs(self) -> list[tuple[str, str]]:
        return _pairs(self.secondary)

    def role(self, pair: tuple[str, str]) -> str | None:
        """'primary', 'secondary', 'exploratory' or None (a pair the plan does not cover)."""
        if pair in self.primary_pairs:
            return "primary"
        if pair in self.secondary_pairs:
            return "secondary"
        if pair[0] == "amcf" and any(pair[1] == p or pair[1].startswith(p)
                                     for p in self.exploratory):
            return "exploratory"
        return None

