"""Fitness scores of AMLS: accuracy (default, unchanged), loss, accuracy with ties broken by
loss; both numbers recorded in every history row; trainings shared between scores."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from amcf.amls import make_fitness, run_amls
from amcf.search.scores import score_value
from amcf.train.config import FitnessConfig, TrainConfig
from compendium.report.fitness import rank_correlation
from compendium.stages.runs import data_fingerprint, fingerprint, sources_fingerprint
from compendium.stages.search import compare_search_scores, run_search, search_dirs

RECIPE = {"epochs": 1, "batch_size": 128, "lr": 0.05, "seed": 3, "progress": False}
PSO = {"particles": 2, "iterations": 1, "seed": 0, "v_max": 2.0}


@pytest.fixture
def no_test(digits):
    return dataclasses.replace(digits, test=None)


def _builder(make_cnn):
    return lambda j: make_cnn(seed=int(torch.randint(0, 1000, ())))


def test_scores_of_a_run_and_the_lexicographic_tie_break():
    acc, loss = [0.5, 0.6, 0.6], [1.2, 0.9, 0.7]
    assert score_value("accuracy", acc, loss, 150) == 0.6
    assert score_value("loss", acc, loss, 150) == -0.7
    assert score_value("accuracy+loss", acc, loss, 150) == pytest.approx(0.6 + 1 / (300 * 1.7))
    # one more validation image right beats any loss, however large the gap
    n = 150
    better = score_value("accuracy+loss", [0.5 + 1 / n], [1e6], n)
    assert better > score_value("accuracy+loss", [0.5], [0.0], n)
    with pytest.raises(ValueError, match="search.fitness.score"):
        score_value("f1", acc, loss, 150)


def _stored(fitness, scheme, val_acc, val_loss):
    path = fitness._run_path(scheme)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"identity": fitness.identity(), "scheme": list(scheme),
                                "val_acc": val_acc, "val_loss": val_loss}))


def test_loss_ranks_schemes_whose_accuracies_tie(no_test, make_cnn, tmp_path):
    def fitness(score):
        config = FitnessConfig(**RECIPE, score=score)
        return make_fitness(["a", "b"], no_test, config, build=_builder(make_cnn),
                            runs_dir=tmp_path / "runs")

    # two schemes whose runs reached the same accuracy, one with a lower loss
    _stored(fitness("accuracy"), (0, 1), [0.8], [0.9])
    _stored(fitness("accuracy"), (1, 0), [0.8], [0.4])
    by_acc, by_loss, by_both = fitness("accuracy"), fitness("loss"), fitness("accuracy+loss")
    assert by_acc((0, 1)) == by_acc((1, 0))  # quantised: a tie
    assert by_loss((1, 0)) > by_loss((0, 1))
    assert by_both((1, 0)) > by_both((0, 1))
    # the stored runs were read: nothing trained, both numbers carried beside the value
    assert by_loss((1, 0)).details == {"val_acc": 0.8, "val_loss": 0.4}


def test_default_score_keeps_the_memo_key_and_work_dirs(digits, sources, tmp_path):
    plain = TrainConfig(**RECIPE)
    default = FitnessConfig(**RECIPE)
    assert default.identity() == plain.identity()
    assert FitnessConfig(**RECIPE, score="loss").identity() == {**plain.identity(),
                                                               "score": "loss"}
    state, runs = search_dirs(digits, sources, PSO, default, 0.2, tmp_path, False)
    # the state path exactly as run_search computed it before scores existed
    old = (tmp_path / "digits" / "amls" / fingerprint(
        PSO, plain.identity(), sources_fingerprint(sources), 0.2, False,
        data_fingerprint(digits)) / "state.json")
    assert state == old
    loss_state, loss_runs = search_dirs(digits, sources, PSO,
                                         FitnessConfig(**RECIPE, score="loss"), 0.2, tmp_path,
                                         False)
    assert loss_state != state and loss_runs == runs  # trainings shared, memos apart


def test_bad_score_is_refused_before_training(no_test, make_cnn):
    with pytest.raises(ValueError, match="score"):
        FitnessConfig(**RECIPE, score="f1")
    sneaky = FitnessConfig(**RECIPE).model_copy(update={"score": "f1"})  # skips pydantic
    with pytest.raises(ValueError, match="search.fitness.score to one of"):
        make_fitness(["a", "b"], no_test, sneaky, build=_builder(make_cnn))


def test_every_call_records_accuracy_and_loss(no_test, make_cnn, tmp_path):
    config = FitnessConfig(**RECIPE, score="loss")
    state = tmp_path / "state.json"
    result = run_amls(["a", "b"], no_test, PSO, config, state_path=state,
                      build=_builder(make_cnn), runs_dir=tmp_path / "runs")
    for row in result.history:
        assert 0 < row["val_acc"] <= 1 and row["val_loss"] > 0
        assert row["fitness"] == -row["val_loss"]
    memo = json.loads(state.read_text())["memo"]
    assert all({"val_acc", "val_loss"} <= set(entry) for entry in memo)
    assert result.settings["context"]["train"]["score"] == "loss"
    # the default score's value is the best val accuracy, as before scores existed
    stored = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    accuracy = make_fitness(["a", "b"], no_test, FitnessConfig(**RECIPE),
                            build=_builder(make_cnn))
    assert accuracy(stored["scheme"]) == max(stored["val_acc"])
    assert "score" not in accuracy.config.identity()


def test_two_scores_share_their_trainings(digits, sources, tmp_path):
    fitness = FitnessConfig(**RECIPE)
    out = compare_search_scores(digits, sources, PSO, fitness, 0.2, tmp_path / "work",
                                scores=("accuracy", "accuracy+loss"))
    results = out["results"]
    distinct = {tuple(r["scheme"]) for res in results.values() for r in res.history}
    assert out["trainings"] == len(distinct)  # no scheme trained twice across the scores
    assert out["same_scheme"] == (out["best"]["accuracy"] == out["best"]["accuracy+loss"])
    # a search under the default score through run_search finds the same memo
    again = run_search(digits, sources, PSO, fitness, 0.2, tmp_path / "out", tmp_path / "work")
    assert list(again.best) == out["best"]["accuracy"]
    assert again.history == results["accuracy"].history


def test_rank_correlation():
    assert rank_correlation([0.1, 0.2, 0.3, 0.4], [1, 3, 2, 4])["rho"] == pytest.approx(0.8)
    assert rank_correlation([0.1, 0.2, 0.3], [0.5, 0.6, 0.9])["rho"] == pytest.approx(1.0)
    few = rank_correlation([0.1, 0.2], [0.3, 0.4])
    assert math.isnan(few["rho"]) and "needs >= 3" in few["reason"]
    flat = rank_correlation([0.5, 0.5, 0.5], [0.3, 0.4, 0.6])
    assert math.isnan(flat["rho"]) and "fitness is constant" in flat["reason"]
    with pytest.raises(ValueError, match="one test accuracy per fitness value"):
        rank_correlation([0.1, 0.2, 0.3], [0.3])
