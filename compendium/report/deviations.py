"""The table of deviations: the authors' released script, this compendium's paper profile, and
the profile whose numbers the paper reports.

The first two columns are facts fixed outside any run (the script as published, and
``profiles/paper.yaml``; tests/test_reporting_deviations.py checks the second against that
file, so it cannot drift); the third comes from the report stage's parameters and the
collected results.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from compendium.report.latex import escape_latex
from compendium.report.macros import PaperParams, fmt_param


@dataclass(frozen=True)
class Recipe:
    """The settings a column of the deviations table states."""

    sources: str
    targets: str
    image_size: int
    particles: int
    iterations: int
    v_max: float
    search_epochs: int
    fitness_split: str
    search_repeatable: str
    repeated_schemes: str
    epochs: int
    batch_size: int
    lr: float
    step_size: int
    model_selection: str
    seeds: str


# the released script (facts from the method's description; see the compendium's reference)
AUTHORS_SCRIPT = Recipe(
    sources="ResNet-50: ImageNet, and ImageNet then CIFAR-100", targets="7 (AdaFilter suite)",
    image_size=224, particles=10, iterations=5, v_max=5.0, search_epochs=5,
    fitness_split="test", search_repeatable="no (re-seeded from the OS)",
    repeated_schemes="trained again", epochs=110, batch_size=64, lr=0.01, step_size=30,
    model_selection="best test epoch", seeds="one (seed 0)")

# profiles/paper.yaml (checked against that file by the tests)
PAPER_PROFILE = Recipe(
    sources="ResNet-50: ImageNet, and ImageNet then CIFAR-100", targets="7 (AdaFilter suite)",
    image_size=224, particles=10, iterations=5, v_max=5.0, search_epochs=5,
    fitness_split="validation", search_repeatable="yes (seeded)",
    repeated_schemes="looked up", epochs=110, batch_size=64, lr=0.01, step_size=30,
    model_selection="validation epoch (best test also shown)", seeds="the profile's seeds")

ROWS = (
    ("Source models", "sources"), ("Targets", "targets"), ("Image size (px)", "image_size"),
    ("Swarm particles", "particles"), ("Swarm iterations", "iterations"),
    ("Velocity bound", "v_max"), ("Fitness epochs", "search_epochs"),
    ("Fitness measured on", "fitness_split"), ("Search repeatable", "search_repeatable"),
    ("Repeated schemes", "repeated_schemes"), ("Final epochs", "epochs"),
    ("Batch size", "batch_size"), ("Learning rate", "lr"), ("LR step (epochs)", "step_size"),
    ("Reported epoch", "model_selection"), ("Seeds", "seeds"),
)


def profile_recipe(params: PaperParams, frame: pd.DataFrame) -> Recipe:
    """The column of the profile the paper reports, from its parameters and its results."""
    seeds = frame.groupby(["target", "method"])["seed"].nunique()
    seed_text = (str(seeds.min()) if seeds.min() == seeds.max()
                 else f"{seeds.min()} to {seeds.max()} per method")
    draws = (f", each pretrained {params.source_draws} times" if params.source_draws > 1
             else "")
    return Recipe(
        sources=(f"{len(params.sources)} x {params.source_arch}: {', '.join(params.sources)}"
                 f"{draws}"),
        targets=f"{frame['target'].nunique()}: {', '.join(sorted(frame['target'].unique()))}",
        image_size=params.image_size, particles=params.particles,
        iterations=params.iterations, v_max=params.v_max, search_epochs=params.search_epochs,
        fitness_split=PAPER_PROFILE.fitness_split,
        search_repeatable=PAPER_PROFILE.search_repeatable,
        repeated_schemes=PAPER_PROFILE.repeated_schemes, epochs=params.epochs,
        batch_size=params.batch_size, lr=params.lr, step_size=params.step_size,
        model_selection=PAPER_PROFILE.model_selection, seeds=seed_text)


def _cell(value: object) -> str:
    return fmt_param(value) if isinstance(value, int | float) else escape_latex(value)


def deviations_table_latex(params: PaperParams, frame: pd.DataFrame, profile: str) -> str:
    """A booktabs tabular: one row per setting, a column per recipe; a setting of the reported
    profile that differs from the authors' script is set in bold."""
    ours = profile_recipe(params, frame)
    header = ["Setting", "Authors' script", "Paper profile",
              f"This run (\\texttt{{{escape_latex(profile)}}})"]
    lines = ["\\begin{tabular}{llll}", "\\toprule", " & ".join(header) + r" \\", "\\midrule"]
    for name, field in ROWS:
        script, paper, mine = (getattr(r, field) for r in (AUTHORS_SCRIPT, PAPER_PROFILE, ours))
        mine_cell = _cell(mine) if mine == script else f"\\textbf{{{_cell(mine)}}}"
        lines.append(" & ".join([name, _cell(script), _cell(paper), mine_cell]) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)
