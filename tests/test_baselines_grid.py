"""Fair baselines: settings grids and the K ablation's sources are chosen on validation."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from amcf.datasets import TensorImageDataset
from amcf.train.config import TrainConfig
from compendium.methods.entry import by_run
from compendium.methods.entry import option_grid as grid_of
from compendium.methods.registry import BASELINES
from compendium.stages.ablations import run_ablations
from compendium.stages.baselines import build_baseline, run_baselines, run_single, select_options
from compendium.stages.choice import best_on_validation
from compendium.stages.runs import Setting, seeded, train

# beta = 100 pulls the new head to zero so hard (lr x beta = 5) that training explodes at once:
# a grid point that makes training impossible, listed first so a tie rule could not save it
BAD_FIRST = {"alpha": 0.01, "beta": [100.0, 0.01]}


def _setting(digits, sources, root, options=None, *, epochs=1, group="baselines", scheme=(3, 0)):
    return Setting(splits=digits, sources=sources, scheme=scheme,
                   train=TrainConfig(epochs=epochs, batch_size=64, lr=0.05, progress=False),
                   results_dir=root / "results", work_dir=root / "work",
                   options=options or {}, group=group)


def _runs(root, method, seed):
    """The work directories of one method and seed (one per distinct run)."""
    folder = root / "work" / "digits" / method / f"seed{seed}"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _finished(root, method, seed):
    return [name for name in _runs(root, method, seed)
            if (root / "work" / "digits" / method / f"seed{seed}" / name / "metrics.json").exists()]


def option_grid(method, options):
    return grid_of(by_run(BASELINES, method), options)


def test_a_grid_is_the_product_of_its_lists_in_the_recipes_order():
    assert option_grid("l2sp", {"alpha": 0.01, "beta": 0.01}) == [{"alpha": 0.01, "beta": 0.01}]
    # however the mapping is ordered, alpha varies slowest (the signature's order)
    assert option_grid("l2sp", {"beta": [1.0, 2.0], "alpha": [0.1, 0.2]}) == [
        {"alpha": 0.1, "beta": 1.0}, {"alpha": 0.1, "beta": 2.0},
        {"alpha": 0.2, "beta": 1.0}, {"alpha": 0.2, "beta": 2.0}]
    assert option_grid("childtune-d", {"p": [0.1, 0.5]}) == [{"p": 0.1}, {"p": 0.5}]
    assert option_grid("scratch", {}) == [{}]


@pytest.mark.parametrize(("method", "options", "message"), [
    ("l2sp", {"alpha": []}, r"l2sp\.alpha is an empty grid"),
    ("l2sp", {"alpah": [0.1]}, r"no setting \['alpah'\].*\['alpha', 'beta'\]"),
    ("childtune-f", {"p": [0.3, 1.5]}, r"childtune-f setting \{'p': 1.5\}.*less than or equal"),
    ("l2sp", {"alpha": [0.1, -1.0]}, r"alpha.*greater than or equal to 0.*options\.l2sp"),
])
def test_a_bad_grid_is_named(method, options, message):
    with pytest.raises(ValueError, match=message):
        option_grid(method, options)


def test_the_best_mean_validation_accuracy_wins_ties_go_first_diverged_never():
    assert best_on_validation([[0.5], [0.7], [0.7]], "x") == 1
    assert best_on_validation([[0.9, 0.1], [0.5, 0.6]], "x") == 1  # mean over seeds
    assert best_on_validation([[None], [0.2]], "x") == 1
    assert best_on_validation([[0.99, None], [0.2, 0.2]], "x") == 1
    with pytest.raises(ValueError, match="no candidate of the l2sp grid.*lower final.train.lr"):
        best_on_validation([[None], [None]], "the l2sp grid")


def test_a_bad_grid_stops_the_stage_before_any_training(digits, sources, tmp_path):
    setting = _setting(digits, sources, tmp_path, {"childtune-f": {"p": [0.3, 0.0]}})
    with pytest.raises(ValueError, match=r"childtune-f setting \{'p': 0.0\}"):
        run_baselines(setting, [0], {}, TrainConfig(epochs=1), ["finetune", "childtune-f"])
    assert not (tmp_path / "work").exists()


def _permuted_test_labels(splits):
    test = splits.test
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))
    permuted = TensorImageDataset(test.images, test.labels[order], test.mean.flatten().tolist(),
                                  test.std.flatten().tolist())
    assert not torch.equal(permuted.labels, test.labels)
    return dataclasses.replace(splits, test=permuted)


def test_the_grid_point_is_chosen_on_validation_and_reused_for_its_seed(digits, sources,
                                                                        tmp_path):
    source = sources[1]
    setting = _setting(digits, sources, tmp_path, {"l2sp": BAD_FIRST})
    chosen = select_options(setting, {"l2sp": source}, [0])
    assert chosen == {"l2sp": {"alpha": 0.01, "beta": 0.01}}
    grid = json.loads((tmp_path / "results/digits/baselines/l2sp/grid.json").read_text())
    assert grid["chosen"] == chosen["l2sp"] and grid["source"] == "b" and grid["seeds"] == [0]
    assert grid["candidate_runs"] == 2
    bad, good = grid["points"]
    assert bad["options"] == {"alpha": 0.01, "beta": 100.0}
    assert bad["diverged"] and bad["val_acc"] == [None] and bad["mean_val_acc"] is None
    assert not good["diverged"] and good["mean_val_acc"] == good["val_acc"][0] > 0

    # the chosen point's published run at the selection seed is the selection's own run
    before = _runs(tmp_path, "l2sp", 0)
    out = run_single(setting, 0, "l2sp", source, chosen["l2sp"])
    assert _runs(tmp_path, "l2sp", 0) == before and len(_finished(tmp_path, "l2sp", 0)) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["options"] == {"alpha": 0.01, "beta": 0.01}
    assert metrics["val_acc"] == good["val_acc"][0]

    # test labels play no part: permuting them changes nothing in the choice or its numbers
    shuffled = dataclasses.replace(setting, splits=_permuted_test_labels(digits),
                                   results_dir=tmp_path / "shuffled")
    assert select_options(shuffled, {"l2sp": source}, [0]) == chosen
    again = json.loads((tmp_path / "shuffled/digits/baselines/l2sp/grid.json").read_text())
    assert again == grid


def test_a_one_point_grid_is_the_old_scalar_setting(digits, sources, tmp_path):
    source = sources[0]
    scalar = _setting(digits, sources, tmp_path, {"l2sp": {"alpha": 0.01, "beta": 0.01}})
    # the run as run_single made it before grids existed
    with seeded(0):
        models, objective = build_baseline("l2sp", [source], 10, in_chans=1,
                                           alpha=0.01, beta=0.01)
    old = train(scalar, "l2sp", 0, models, objective).metrics
    assert select_options(scalar, {"l2sp": source}, [0]) == {"l2sp": {"alpha": 0.01,
                                                                      "beta": 0.01}}
    texts = []
    for options in ({"alpha": 0.01, "beta": 0.01}, {"alpha": [0.01], "beta": [0.01]}):
        setting = dataclasses.replace(scalar, options={"l2sp": options})
        texts.append((run_single(setting, 0, "l2sp", source) / "metrics.json").read_text())
    assert texts[0] == texts[1]
    new = json.loads(texts[0])
    for key in ("val_acc", "test_acc", "best_test_acc", "selected_epoch"):
        assert new[key] == old[key], key
    assert len(_runs(tmp_path, "l2sp", 0)) == 1  # the same run, reused: no extra training
    assert not (tmp_path / "results/digits/baselines/l2sp/grid.json").exists()
    with pytest.raises(ValueError, match="grid of 2 settings.*select_options"):
        run_single(dataclasses.replace(scalar, options={"l2sp": {"alpha": [0.01, 0.1]}}), 0,
                   "l2sp", source)


def test_the_k_ablation_runs_the_sources_best_on_validation(digits, sources, tmp_path):
    # source a keeps all but its last layer frozen, b trains fully: b does better on val,
    # though list order (the old rule) would have taken a
    setting = _setting(digits, sources, tmp_path, epochs=2, group="ablations", scheme=(10, 0))
    run_ablations(setting, [0, 1], [], ["amcf-k"])
    root = tmp_path / "results/digits/ablations/amcf-k1"
    record = json.loads((root / "subsets.json").read_text())
    assert record["k"] == 1 and record["seeds"] == [0] and record["candidate_runs"] == 2
    assert [c["sources"] for c in record["candidates"]] == [["a"], ["b"]]
    assert [c["schemes"] for c in record["candidates"]] == [[[10]], [[0]]]
    by_name = {c["sources"][0]: c["mean_val_acc"] for c in record["candidates"]}
    assert by_name["b"] > by_name["a"] and record["chosen"] == ["b"]
    for seed in (0, 1):
        metrics = json.loads((root / f"seed{seed}/metrics.json").read_text())
        assert metrics["sources"] == ["b"] and metrics["scheme"] == [0]
    seed0 = json.loads((root / "seed0/metrics.json").read_text())
    assert seed0["val_acc"] == by_name["b"]
    # both candidates trained on the first seed only; the chosen one's run there was reused
    assert len(_runs(tmp_path, "amcf-k1", 0)) == 2 and len(_runs(tmp_path, "amcf-k1", 1)) == 1
