"""``report``: every generated input of ``paper/main.tex`` (tables, macros, claims, figures,
``summary.json``) from the active profile's results; the ``paper`` stage then runs LaTeX."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compendium.plan import AnalysisPlan
from compendium.report.layers import source_layer_tables
from compendium.report.macros import paper_params
from compendium.report.paper_inputs import write_paper_inputs


def report_stage(results_dir: str | os.PathLike, paper_dir: str | os.PathLike, profile: str,
                 featured_target: str, sources: Mapping[str, Mapping[str, Any]], lam: float,
                 pso: Mapping[str, Any], fitness: Mapping[str, Any], train: Mapping[str, Any],
                 image_size: int, plan: AnalysisPlan) -> dict[str, Path]:
    """The whole ``report`` stage; returns the written paths by role. ``plan``: the analysis
    plan the comparisons and claims follow (``params.yaml``'s ``analysis_plan``)."""
    params = paper_params(sources, lam, pso, fitness, train, image_size)
    # a hub source (no pretrain stage) gets the table of its architecture
    layer_tables = source_layer_tables(results_dir, sources)
    return write_paper_inputs(results_dir, paper_dir, profile, params,
                              layer_tables=layer_tables, featured_target=featured_target,
                              plan=plan)
