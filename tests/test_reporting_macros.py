import itertools
import re

import pandas as pd
import pytest
from reporting_support import DEMO_PARAMS, write_demo_results

from compendium.report.collect import collect
from compendium.report.macros import (
    PaperParams,
    macro_name,
    merge_macros,
    param_macros,
    render_macros,
    result_macros,
)
from compendium.report.tables import results_table


def test_macro_name_example_and_digits_spelled_out():
    assert macro_name("omniglot-small", "amcf", "TestAcc") == "AmcfOmniglotSmallTestAcc"
    assert macro_name("digits", "amcf-lam0.5", "Delta") == "AmcfLamZeroPointFiveDigitsDelta"
    assert macro_name(None, "param", "weight_decay") == "ParamWeightDecay"
    assert macro_name(None, None, "Profile") == "Profile"


def test_macro_names_are_deterministic_letters_and_unique():
    targets = ["omniglot-small", "digits", "openmoji", "caltech256-30", "caltech256-60"]
    methods = ["amcf", "amcf-lam0", "amcf-lam0.5", "amcf-lam5", "amcf-k1", "amcf-k2",
               "finetune-mnist", "linear-mnist", "scratch", "l2sp"]
    quantities = ["TestAcc", "TestAccStd", "Delta", "PValue"]
    names = [macro_name(t, m, q) for t, m, q in itertools.product(targets, methods, quantities)]
    assert all(re.fullmatch(r"[A-Za-z]+", n) for n in names)
    assert len(set(names)) == len(names)
    assert names == [macro_name(t, m, q)
                     for t, m, q in itertools.product(targets, methods, quantities)]


def test_macro_name_needs_a_lettered_quantity():
    with pytest.raises(ValueError, match="quantity"):
        macro_name("t", "m", "--")


def test_render_refuses_non_letter_names_and_merge_refuses_clashes():
    with pytest.raises(ValueError, match="letters only"):
        render_macros({"Bad1": "x"})
    with pytest.raises(ValueError, match="defined twice"):
        merge_macros({"A": "1"}, {"A": "2"})
    assert merge_macros({"A": "1"}, {"A": "1", "B": "2"}) == {"A": "1", "B": "2"}


def test_param_macros_cover_lambda_and_validate():
    macros = param_macros(DEMO_PARAMS)
    assert macros["ParamLam"] == "0.2"
    assert macros["ParamWeightDecay"] == "0.0005"
    assert macros["ParamCOne"] == "1.5" and macros["ParamNumSources"] == "3"
    assert macros["ParamSources"] == r"\texttt{mnist}, \texttt{animals}, \texttt{twemoji}"
    with pytest.raises(ValueError, match="lamda"):
        param_macros({**DEMO_PARAMS, "lamda": 0.1})
    with pytest.raises(ValueError, match="particles"):
        param_macros({**DEMO_PARAMS, "particles": 0})


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    return collect(write_demo_results(tmp_path_factory.mktemp("r") / "results"))


def test_result_macros_equal_the_table_numbers(frame):
    macros = result_macros(frame)
    table = results_table(frame, "omniglot-small").set_index("method")
    amcf = table.loc["amcf"]
    assert macros["AmcfOmniglotSmallTestAcc"] == f"{100 * amcf.test_mean:.1f}"
    assert macros["AmcfOmniglotSmallSeeds"] == "3"
    assert macros["AmcfOmniglotSmallDelta"] == f"{100 * amcf.delta:+.1f}"
    runs = frame[(frame.target == "omniglot-small") & (frame.method == "amcf")]
    assert float(macros["AmcfOmniglotSmallTestAcc"]) == pytest.approx(
        100 * runs.test_acc.mean(), abs=0.05)
    assert macros["NumTargets"] == "2" and macros["MinSeeds"] == "3"
    inflation = (frame.best_test_acc - frame.test_acc).mean()
    assert macros["MeanInflation"] == f"{100 * inflation:.1f}"
    assert macros["OmniglotSmallReference"] == frame.loc[
        frame.method == amcf.reference, "label"].iloc[0].replace("_", r"\_")


def test_runs_without_a_best_over_epochs_are_left_out_of_the_inflation(frame):
    # test_eval "selected": such runs report no best_test_acc
    selected = frame.method != "amcf"
    partial = frame.assign(best_test_acc=frame.best_test_acc.where(~selected))
    macros = result_macros(partial)
    amcf = frame[~selected]
    assert macros["InflationRuns"] == str(len(amcf)) and len(amcf) < len(frame)
    assert macros["InflationMethods"] == r"\texttt{amcf}"
    assert macros["MeanInflation"] == f"{100 * (amcf.best_test_acc - amcf.test_acc).mean():.1f}"
    table = results_table(partial, "omniglot-small").set_index("method")
    assert pd.isna(table.loc["ensemble", "best_test_mean"])
    assert table.loc["amcf", "best_test_mean"] == pytest.approx(
        amcf[amcf.target == "omniglot-small"].best_test_acc.mean())


def test_result_macros_detect_targets_that_differ_only_in_punctuation(frame):
    clash = pd.concat([frame, frame.assign(target=frame.target.str.replace("-", "_"))])
    with pytest.raises(ValueError, match="already defined"):
        result_macros(clash)


def test_paper_params_from_the_pipelines_sections_fill_the_defaults():
    sources = {"b": {"arch": "resnet50", "weights": "hub"}, "a": {"arch": "cifar_resnet20"},
               "c": {"arch": "resnet50"}}
    p = PaperParams.from_settings(sources, 0.2, {"particles": 6, "iterations": 3},
                                  {"epochs": 3}, {"epochs": 12, "lr": 0.05}, image_size=28)
    assert p.sources == ["b", "a", "c"] and p.source_arch == "cifar_resnet20, resnet50"
    # what a section leaves out is the swarm's or the recipe's default, as in the runs
    assert (p.w_start, p.w_end, p.c1, p.v_max) == (1.4, 0.7, 1.5, 5.0)
    assert (p.search_epochs, p.epochs, p.lr, p.momentum, p.step_size) == (3, 12, 0.05, 0.9, 30)
    with pytest.raises(ValueError, match="particles"):
        PaperParams.from_settings(sources, 0.2, {"particles": 0, "iterations": 3}, {}, {}, 28)


def test_the_significance_the_macros_state_and_count_with_is_the_plans_alpha(frame):
    strict, loose = result_macros(frame, alpha=1e-9), result_macros(frame, alpha=1.0)
    assert (strict["SignificanceLevel"], loose["SignificanceLevel"]) == ("1e-09", "1")
    assert strict["AmcfTargetsSignificant"] == "0"
    # with alpha 1 every target where AMCF is above its reference counts
    assert loose["AmcfTargetsSignificant"] == loose["AmcfTargetsAboveReference"]
    assert result_macros(frame)["SignificanceLevel"] == "0.05"  # the library's default
