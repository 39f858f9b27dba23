"""The analysis plan (compendium/plan.py): checked with params.yaml before anything runs, read by
the report, and recorded in dvc.lock by every stage whose results it governs, so results made
before the plan's last change are found."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compendium.params import ParamsError, load_params
from compendium.pipeline.lock import PLAN_GOVERNED, plan_mismatches
from compendium.plan import AnalysisPlan

ROOT = Path(__file__).resolve().parents[1]
PLAN = yaml.safe_load((ROOT / "params.yaml").read_text())["analysis_plan"]


def _params_with(tmp_path: Path, **changes) -> Path:
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["analysis_plan"] = {**tree["analysis_plan"], **changes}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def test_the_committed_plan_names_the_primary_comparison_and_the_margin():
    plan = load_params(ROOT / "params.yaml").analysis_plan
    assert plan.primary_pairs == [("amcf", "ensemble")]
    assert ("amcf", "best-single-source") in plan.secondary_pairs
    assert plan.equivalence_margin == 0.01 and plan.alpha == 0.05
    assert plan.role(("amcf", "amcf-lam0")) == "secondary"  # a planned pair keeps its role
    assert plan.role(("amcf", "amcf-lam1")) == "exploratory"
    assert plan.role(("amcf", "scratch")) is None


@pytest.mark.parametrize(("changes", "message"), [
    ({"targets": ["digits"]}, r"analysis_plan\.targets \['digits'\] are not the targets "
     r"\[.*\]: the plan fixes the targets before the results"),
    ({"primary": {"amcf": ["ensemble", "amcf-lam0"]}}, "exactly one comparison"),
    ({"secondary": {"amcf": ["ensemble"]}}, r"more than once.*primary or secondary"),
    ({"secondary": {"amcf": ["amcf"]}}, "compares a method with itself"),
    ({"alpha": 1.5}, r"analysis_plan\.alpha"),
    ({"equivalence_margin": 1}, r"analysis_plan\.equivalence_margin"),
    ({"holm": "pooled"}, r"analysis_plan\.holm: unknown key"),
])
def test_a_bad_plan_is_refused_before_anything_runs(tmp_path, changes, message):
    with pytest.raises(ParamsError, match=message):
        load_params(_params_with(tmp_path, **changes))


def test_a_one_element_list_from_the_notebook_flags_is_a_list():
    # DVC unpacks `amcf-select: [amcf]` into `--secondary.amcf-select amcf`: one bare value
    plan = AnalysisPlan(**{**PLAN, "secondary": {"amcf-select": "amcf"}})
    assert plan.secondary_pairs == [("amcf-select", "amcf")]


def _lock(recorded: dict | None) -> dict:
    params = {"params.yaml": {"amcf": {"lam": 0.2}}}
    if recorded is not None:
        params["params.yaml"]["analysis_plan"] = recorded
    stages = {f"{k}@digits": {"cmd": "x", "params": params} for k in PLAN_GOVERNED[:-1]}
    stages["report"] = {"cmd": "x", "params": params}
    stages["pretrain@mnist"] = {"cmd": "x", "params": {"params.yaml": {"pretrain.mnist": {}}}}
    return {"schema": "2.0", "stages": stages}


def test_results_under_the_current_plan_pass():
    assert plan_mismatches(_lock(PLAN), PLAN) == {}


def test_results_older_than_the_plan_fail():
    older = {**PLAN, "equivalence_margin": 0.02, "alpha": 0.1}
    problems = plan_mismatches(_lock(older), PLAN)
    assert set(problems) == {"search@digits", "amcf@digits", "baselines@digits",
                             "ablations@digits", "report"}  # not pretrain: no plan governs it
    assert "differs in alpha, equivalence_margin" in problems["report"]
    none = plan_mismatches(_lock(None), PLAN)
    assert set(none) == set(problems) and "records no analysis plan" in none["amcf@digits"]
    lock = _lock(PLAN)
    del lock["stages"]["report"]
    assert plan_mismatches(lock, PLAN) == {"report": "no entry in dvc.lock: its results were "
                                                     "never recorded"}


def test_every_stage_the_plan_governs_lists_it_in_dvc_yaml():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for kind in PLAN_GOVERNED:
        stage = stages[kind].get("do", stages[kind])
        assert "analysis_plan" in stage["params"], kind
    assert "${analysis_plan}" in stages["report"]["cmd"]  # the report reads it as parameters
    for kind in ("prepare", "pretrain", "paper"):
        stage = stages[kind].get("do", stages[kind])
        assert "analysis_plan" not in stage.get("params", []), kind


def test_the_committed_results_were_produced_under_the_current_plan():
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())
    assert plan_mismatches(lock, PLAN) == {}
