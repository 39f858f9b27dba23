from pathlib import Path

import pandas as pd
import yaml
from reporting_support import DEMO_PARAMS

from compendium.report.deviations import PAPER_PROFILE, deviations_table_latex
from compendium.report.macros import PaperParams

PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "paper.yaml"


def test_paper_profile_column_matches_profiles_paper_yaml():
    paper = yaml.safe_load(PROFILE.read_text())
    pso, fitness = paper["search"]["pso"], paper["search"]["fitness"]
    train = paper["final"]["train"]
    assert (PAPER_PROFILE.particles, PAPER_PROFILE.iterations) == (pso["particles"],
                                                                   pso["iterations"])
    assert PAPER_PROFILE.v_max == pso["v_max"]
    assert PAPER_PROFILE.search_epochs == fitness["epochs"]
    assert (PAPER_PROFILE.epochs, PAPER_PROFILE.batch_size, PAPER_PROFILE.lr,
            PAPER_PROFILE.step_size) == (train["epochs"], train["batch_size"], train["lr"],
                                         train["step_size"])
    assert PAPER_PROFILE.image_size == paper["report"]["image_size"]
    assert PAPER_PROFILE.targets.startswith(f"{len(paper['targets'])} ")
    assert len(paper["amcf"]["sources"]) == 2 and "CIFAR-100" in PAPER_PROFILE.sources


def test_deviations_mark_the_reported_profiles_departures_in_bold():
    frame = pd.DataFrame({"target": ["a", "a", "b"], "method": ["amcf"] * 3, "seed": [0, 1, 0]})
    tex = deviations_table_latex(PaperParams(**DEMO_PARAMS), frame, "tiny_profile")
    rows = {line.split(" & ")[0]: line for line in tex.splitlines() if " & " in line}
    assert r"\texttt{tiny\_profile}" in rows["Setting"]
    assert rows["Final epochs"].endswith(r"\textbf{6} \\")  # 110 in the script
    assert rows["Learning rate"].endswith(r"& 0.01 \\")  # the same: not bold
    assert r"\textbf{1 to 2 per method}" in rows["Seeds"]
