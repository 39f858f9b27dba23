"""The method table: one spelling per method, read by params, experiments, recipes, reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compendium.methods.registry import (
    ABLATION_RUNS,
    BASELINE_RUNS,
    METHODS,
    family_runs,
    method_info,
)

ROOT = Path(__file__).resolve().parents[1]


def test_runs_of_each_family_come_from_the_table_in_order():
    assert BASELINE_RUNS == ("scratch", "finetune", "linear", "l2sp", "childtune-f",
                             "childtune-d", "als", "adafilter")
    assert ABLATION_RUNS == ("amcf-lam", "amcf-full", "amcf-random", "amcf-k", "amcf-dml")
    assert family_runs("amcf") == ("amcf",)
    with pytest.raises(ValueError, match="unknown family"):
        family_runs("baselines")


@pytest.mark.parametrize("result_id, run, label", [
    ("finetune-mnist", "finetune", "Fine-tune (mnist)"),
    ("ensemble", "finetune", "Ensemble of fine-tuned sources"),
    ("amcf-lam0.5", "amcf-lam", "AMCF, lambda = 0.5"),
    ("amcf-k2", "amcf-k", "AMCF, K = 2"),
    ("amcf-select", "amcf", "AMCF, sources selected on validation"),
    ("childtune-f", "childtune-f", "Child-Tuning (task-free)"),
    ("amcf", "amcf", "AMCF"),
])
def test_result_ids_resolve_to_their_run_and_label(result_id, run, label):
    info = method_info(result_id)
    assert (info.run, info.label) == (run, label)


def test_exact_ids_win_over_templates_and_unknown_ids_are_refused():
    # "amcf-dml" also matches no template, "amcf" must not be read as a template's fill
    assert method_info("amcf-dml").family == "ablation"
    assert method_info("amcf").family == "amcf"
    assert method_info("finetune-animals").reference
    assert not method_info("ensemble").reference
    with pytest.raises(ValueError, match="unknown method id 'magic'.*compendium/methods/"):
        method_info("magic")


def test_table_order_is_baselines_then_ablations_then_amcf():
    families = [m.family for m in METHODS]
    assert families == sorted(families, key=["baseline", "ablation", "amcf"].index)


@pytest.mark.parametrize("params", [ROOT / "params.yaml", ROOT / "profiles/paper.yaml"],
                         ids=lambda p: p.name)
def test_params_name_methods_and_options_by_run_id(params):
    raw = yaml.safe_load(params.read_text())
    for group, known in (("baselines", BASELINE_RUNS), ("ablations", ABLATION_RUNS)):
        assert set(raw[group]["methods"]) <= set(known), group
        assert set(raw[group].get("options", {})) <= set(known), group


@pytest.mark.parametrize(("result_id", "searched"), [
    ("amcf", True), ("amcf-select", True), ("amcf-lam0", True), ("amcf-k2", True),
    ("amcf-dml", True), ("amcf-full", False), ("amcf-random", False), ("als", False),
    ("finetune-mnist", False), ("l2sp", False)])
def test_the_methods_that_train_with_the_searched_scheme_say_so(result_id, searched):
    """Their cost includes the target's AMLS search (the report's cost columns)."""
    assert method_info(result_id).searched is searched
