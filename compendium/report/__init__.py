"""Reporting: collect the result tree, statistics over seeds, LaTeX tables and macros, figures,
and :func:`write_paper_inputs`, which writes every generated input of ``paper/main.tex``."""

from compendium.methods import MethodInfo, method_info
from compendium.report.collect import collect, run_dir, search_evaluations
from compendium.report.figures import (
    plot_layer_scheme,
    plot_method_accuracies,
    plot_paired_differences,
    plot_per_class_errors,
    plot_swarm,
    plot_training_curves,
    save_figure,
)
from compendium.report.latex import escape_latex
from compendium.report.macros import PaperParams, macro_name, render_macros, write_macros
from compendium.report.paper import write_figures, write_paper_inputs
from compendium.report.stats import (
    MeanStd,
    PairedComparison,
    PairedInterval,
    best_single_source,
    comparison_table,
    holm,
    mean_std,
    paired_comparison,
    paired_difference,
    paired_test,
    stratified_difference,
)
from compendium.report.tables import results_table, summary_table, write_tables

__all__ = [
    "MeanStd", "MethodInfo", "PaperParams", "PairedComparison", "PairedInterval",
    "best_single_source", "collect", "comparison_table", "holm", "paired_difference",
    "stratified_difference",
    "escape_latex", "macro_name", "mean_std", "method_info", "paired_comparison",
    "paired_test", "plot_layer_scheme", "plot_method_accuracies", "plot_paired_differences",
    "plot_per_class_errors",
    "plot_swarm", "plot_training_curves", "render_macros", "results_table", "run_dir",
    "save_figure", "search_evaluations", "summary_table", "write_figures", "write_macros",
    "write_paper_inputs", "write_tables",
]
