"""Few-shot training sets drawn afresh per seed from a target's pool (issue 20): each draw has
exactly ``shots`` images of every class, all from the pool; a draw repeats exactly, draws and
datasets differ; training seed s trains on draw s and the search at position p on draw p; a
pool too small, or a dataset not in memory, stops with the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from amcf.datasets import Splits
from amcf.train.config import FitnessConfig, TrainConfig
from compendium import results
from compendium.data.errors import DataError
from compendium.stages import runs
from compendium.stages import search as search_stage
from compendium.stages.fewshot import shot_indices, with_shots
from compendium.stages.runs import Setting, run_amcf_variant


def test_a_draw_takes_shots_of_every_class_from_the_pool_and_repeats_exactly():
    labels = np.repeat(np.arange(4), [6, 9, 5, 12])
    first = shot_indices(labels, 3, 0, dataset="toy")
    assert np.array_equal(first, np.sort(first)) and len(set(first.tolist())) == 12
    assert np.bincount(labels[first]).tolist() == [3, 3, 3, 3]
    assert np.array_equal(first, shot_indices(labels, 3, 0, dataset="toy"))
    draws = [tuple(shot_indices(labels, 3, d, dataset="toy")) for d in range(10)]
    assert len(set(draws)) == 10  # ten seeds, ten different training sets
    assert tuple(shot_indices(labels, 3, 0, dataset="other")) != draws[0]
    # every image of the pool is drawn by some seed: the draws cover the pool
    many = [shot_indices(labels, 3, d, dataset="toy") for d in range(50)]
    assert set(np.concatenate(many).tolist()) == set(range(len(labels)))


def test_a_pool_too_small_or_a_count_below_one_stops_with_the_fix():
    labels = np.repeat(np.arange(3), [4, 2, 4])
    with pytest.raises(DataError, match=r"class 1 has 2 images .* fewer than the 3 shots.*"
                                        r"targets.toy.shots"):
        shot_indices(labels, 3, 0, dataset="toy")
    with pytest.raises(DataError, match="at least 1"):
        shot_indices(labels, 0, 0, dataset="toy")


def test_with_shots_replaces_train_only(digits):
    drawn = with_shots(digits, 2, 5)
    assert len(drawn.train) == 2 * digits.num_classes
    assert torch.bincount(drawn.train.labels).tolist() == [2] * digits.num_classes
    assert drawn.val is digits.val and drawn.test is digits.test
    assert drawn.name == digits.name and drawn.classes == digits.classes
    assert drawn.train.augment is digits.train.augment
    idx = shot_indices(digits.train.labels.numpy(), 2, 5, dataset=digits.name)
    assert torch.equal(drawn.train.images, digits.train.images[torch.from_numpy(idx)])
    assert with_shots(digits, None, 5) is digits


def test_few_shot_draws_need_a_dataset_held_in_memory(digits):
    listed = Splits(name="cells", train=torch.utils.data.TensorDataset(torch.zeros(4, 1)),
                    val=digits.val, test=digits.test, classes=["a", "b"])
    with pytest.raises(DataError, match=r"targets.cells.shots to null"):
        with_shots(listed, 1, 0)


def _setting(digits, tmp_path, shots):
    return Setting(splits=digits, sources=[], scheme=(), shots=shots,
                   train=TrainConfig(epochs=1, batch_size=64, lr=0.05, progress=False),
                   results_dir=tmp_path / "results", work_dir=tmp_path / "work")


def test_training_seed_s_trains_on_draw_s_and_says_so_in_its_metrics(digits, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setenv("AMCF_LOCAL_WORKERS", "1")  # in this process, where the spy is
    trained = []
    real = runs.fit

    def spy(models, splits, *args, **kwargs):
        trained.append(splits.train.images.clone())
        return real(models, splits, *args, **kwargs)

    monkeypatch.setattr(runs, "fit", spy)
    setting = _setting(digits, tmp_path, shots=1)
    setting.sources = [runs.SourceSpec(name="tiny", arch="amcf_resnet_tiny", weights=None)]
    setting.scheme = (0,)
    for seed in (0, 1):
        run_amcf_variant(setting, seed)
    for seed, images in enumerate(trained):
        assert torch.equal(images, with_shots(digits, 1, seed).train.images)
    assert not torch.equal(trained[0], trained[1])
    here = setting.for_seed(1)
    assert here.for_seed(1).splits.train is here.splits.train  # drawn once, not again
    metrics = json.loads((setting.out_dir("amcf", 1) / "metrics.json").read_text())
    assert (metrics["shots"], metrics["train_images"], metrics["classes"]) == (1, 10, 10)
    whole = _setting(digits, tmp_path, shots=None)
    assert whole.train_facts == {"train_images": len(digits.train), "classes": 10,
                                 "shots": None}


def test_the_search_at_position_p_trains_on_draw_p(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("AMCF_LOCAL_WORKERS", "1")
    searched = {}

    def fake(splits, sources, pso, fitness, lam, out_dir, work_dir, freeze_bn_stats=False):
        from amcf.search.result import SearchResult

        searched[pso["seed"]] = splits.train.images.clone()
        result = SearchResult("pso", (0,), 0.5, 1, 1, [{"scheme": [0], "fitness": 0.5}],
                              {"seed": pso["seed"]})
        results.write_search(out_dir, [s.name for s in sources], result)
        return result

    monkeypatch.setattr(search_stage, "run_search", fake)
    tiny = [runs.SourceSpec(name="tiny", arch="amcf_resnet_tiny", weights=None)]
    search_stage.run_searches(digits, tiny, {"particles": 2, "iterations": 1},
                              FitnessConfig(epochs=1, batch_size=64, progress=False), 0.2,
                              [7, 3], tmp_path / "digits", tmp_path / "work", shots=2)
    assert torch.equal(searched[7], with_shots(digits, 2, 0).train.images)
    assert torch.equal(searched[3], with_shots(digits, 2, 1).train.images)
