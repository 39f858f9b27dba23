"""Methods by id through the one trainer: layout, member results, seeding, selection."""

from __future__ import annotations

import json

import pytest
import torch

from amcf.models.build import build_frozen
from amcf.train.config import TrainConfig
from compendium.report.collect import collect
from compendium.stages.ablations import random_scheme
from compendium.stages.baselines import best_single_source, run_finetune
from compendium.stages.runs import Setting, run_amcf_variant
from compendium.stages.search import run_search


def _setting(digits, sources, tmp_path, **kw):
    return Setting(splits=digits, sources=sources, scheme=(3, 0),
                   train=TrainConfig(epochs=2, batch_size=64, lr=0.05, progress=False),
                   results_dir=tmp_path / "results", work_dir=tmp_path / "work", **kw)


def test_amcf_run_is_the_same_whatever_ran_before_in_the_process(digits, sources, tmp_path):
    first = json.loads((run_amcf_variant(_setting(digits, sources, tmp_path / "1"), 0)
                        / "metrics.json").read_text())
    torch.rand(1000)  # disturb the global RNG, as an earlier run in the same notebook would
    second = json.loads((run_amcf_variant(_setting(digits, sources, tmp_path / "2"), 0)
                         / "metrics.json").read_text())
    for key in ("val_acc", "test_acc", "best_test_acc", "selected_epoch", "scheme"):
        assert first[key] == second[key], key
    other_seed = json.loads((run_amcf_variant(_setting(digits, sources, tmp_path / "1"), 1)
                             / "metrics.json").read_text())
    assert other_seed["test_acc"] != first["test_acc"] or other_seed["val_acc"] != first["val_acc"]


def test_scheme_freezes_the_bottom_layers_of_each_source(digits, sources):
    a, b = build_frozen(sources, (3, 0), digits)
    assert not a.conv1[0].weight.requires_grad and a.layer1[0].conv1.weight.requires_grad
    assert all(p.requires_grad for p in b.parameters())


def test_finetune_run_publishes_ensemble_and_each_source(digits, sources, tmp_path):
    setting = _setting(digits, sources, tmp_path, group="baselines")
    for seed in (0, 1):
        run_finetune(setting, seed)
    root = tmp_path / "results" / "digits" / "baselines"
    assert {p.name for p in root.iterdir()} == {"ensemble", "finetune-a", "finetune-b"}
    joint = json.loads((root / "ensemble/seed0/metrics.json").read_text())
    for j, name in enumerate(["a", "b"]):
        member = json.loads((root / f"finetune-{name}/seed0/metrics.json").read_text())
        assert member["val_acc"] == joint["members"][j]["val_acc"]
        assert member["test_acc"] == joint["members"][j]["test_acc"]
        assert member["num_models"] == 1 and member["model_epochs"] == joint["epochs"]
        # each member is charged half the joint run's wall time, in the timing record only
        assert "wall_time_s" not in member
        record = json.loads((tmp_path / "timings" / f"digits/baselines/finetune-{name}/seed0.json")
                            .read_text())
        joint_record = json.loads((tmp_path / "timings/digits/baselines/ensemble/seed0.json")
                                  .read_text())
        assert record["wall_time_s"] == pytest.approx(joint_record["wall_time_s"] / 2)
        assert record["shared_by"] == 2
    frame = collect(tmp_path / "results")
    assert set(frame["method"]) == {"ensemble", "finetune-a", "finetune-b"}
    assert len(frame) == 6
    # the best single source is chosen on mean validation accuracy, never on test
    vals = {n: frame[frame.method == f"finetune-{n}"]["val_acc"].mean() for n in "ab"}
    assert best_single_source(setting, [0, 1]).name == max(vals, key=vals.get)


def test_random_scheme_is_in_range_and_seeded(digits, sources, tmp_path):
    setting = _setting(digits, sources, tmp_path)
    schemes = [random_scheme(setting, s) for s in range(6)]
    assert all(0 <= k <= 10 for scheme in schemes for k in scheme)
    assert schemes[0] == random_scheme(setting, 0) and len(set(schemes)) > 1


def test_scheme_length_must_match_sources(digits, sources, tmp_path):
    with pytest.raises(ValueError, match="one entry per source"):
        Setting(splits=digits, sources=sources, scheme=(1,), train=TrainConfig(epochs=1))


def test_a_rerun_publishes_byte_identical_results_and_records_its_time(digits, sources,
                                                                       tmp_path):
    # two runs from scratch (own work directories), as on a fresh clone and again
    outs = [run_amcf_variant(_setting(digits, sources, tmp_path / run), 0) for run in ("1", "2")]
    for name in ("metrics.json", "history.csv", "test_predictions.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    record = json.loads((tmp_path / "1" / "timings/digits/amcf/seed0.json").read_text())
    assert record["run"] == "digits/amcf/seed0" and record["wall_time_s"] > 0
    assert len(record["epoch_seconds"]) == 2


def test_search_writes_its_result_and_metric_and_resumes_from_its_state(digits, sources,
                                                                        tmp_path):
    pso = {"particles": 2, "iterations": 1, "seed": 0, "v_max": 2.0}
    fitness = TrainConfig(epochs=1, batch_size=128, progress=False)
    result = run_search(digits, sources, pso, fitness, 0.2, tmp_path / "out", tmp_path / "work")
    search = json.loads((tmp_path / "out/search.json").read_text())
    assert search["sources"] == ["a", "b"] and search["best"] == list(result.best)
    assert search["calls"] == 4 and len(search["history"]) == 4
    summary = json.loads((tmp_path / "out/search-summary.json").read_text())
    assert summary == {"best_fitness": result.best_fitness, "calls": 4,
                       "evaluations": result.evaluations,
                       "k_a": result.best[0], "k_b": result.best[1]}
    # a second call reads the finished state: the same files, byte for byte
    before = (tmp_path / "out/search.json").read_bytes()
    (tmp_path / "out/search.json").unlink()
    again = run_search(digits, sources, pso, fitness, 0.2, tmp_path / "out", tmp_path / "work")
    assert again.best == result.best and (tmp_path / "out/search.json").read_bytes() == before
    assert len(list((tmp_path / "work/digits/amls").iterdir())) == 1


def test_a_finished_run_keeps_its_numbers_not_its_weights(digits, sources, tmp_path):
    setting = _setting(digits, sources, tmp_path)
    out = run_amcf_variant(setting, 0)
    work = list((tmp_path / "work").rglob("metrics.json"))
    assert len(work) == 1 and not (work[0].parent / "checkpoint.pt").exists()
    first = (out / "metrics.json").read_text()
    (out / "metrics.json").unlink()
    # reused, not retrained
    assert (run_amcf_variant(setting, 0) / "metrics.json").read_text() == first


def test_each_seed_trains_with_the_scheme_of_its_search_seed(digits, sources, tmp_path):
    setting = _setting(digits, sources, tmp_path, schemes=((3, 0), (0, 2)))
    assert [setting.scheme_for(s) for s in range(4)] == [(3, 0), (0, 2), (3, 0), (0, 2)]
    metrics = json.loads((run_amcf_variant(setting, 1) / "metrics.json").read_text())
    assert metrics["scheme"] == [0, 2]
    with pytest.raises(ValueError, match="one entry per source"):
        _setting(digits, sources, tmp_path, schemes=((3, 0), (1,)))


def test_only_the_decisive_comparisons_run_on_every_seed(digits, sources, tmp_path):
    from compendium.methods.entry import seeds_of
    from compendium.methods.registry import METHODS
    from compendium.stages.ablations import run_ablations

    assert seeds_of("amcf-full", range(5), 2, METHODS) == [0, 1, 2, 3, 4]
    assert seeds_of("finetune-mnist", range(5), 2, METHODS) == [0, 1, 2, 3, 4]
    assert seeds_of("amcf-dml", range(5), 2, METHODS) == [0, 1]
    assert seeds_of("amcf-dml", range(5), None, METHODS) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="few_seeds"):
        seeds_of("amcf-dml", range(5), 0, METHODS)
    setting = _setting(digits, sources, tmp_path, group="ablations")
    run_ablations(setting, [0, 1], [0.0, 1.0], ["amcf-lam"], few_seeds=1)
    root = tmp_path / "results" / "digits" / "ablations"
    assert sorted(p.name for p in (root / "amcf-lam0").iterdir()) == ["seed0", "seed1"]
    assert sorted(p.name for p in (root / "amcf-lam1").iterdir()) == ["seed0"]


def test_one_search_per_search_seed_and_their_choice_under_another_score(digits, sources,
                                                                        tmp_path):
    from amcf.train.config import FitnessConfig
    from compendium.results import schemes_of
    from compendium.stages.search import run_searches

    pso = {"particles": 2, "iterations": 1, "v_max": 2.0}
    fitness = FitnessConfig(epochs=1, batch_size=128, progress=False)
    results = run_searches(digits, sources, pso, fitness, 0.2, [0, 1], tmp_path / "out",
                           tmp_path / "work", compare_scores=["loss"])
    table = json.loads((tmp_path / "out/searches.json").read_text())
    rows = table["searches"]
    assert [r["seed"] for r in rows] == [0, 1]
    assert [tuple(r["best"]) for r in rows] == [tuple(r.best) for r in results]
    assert schemes_of(tmp_path / "out/searches.json") == tuple(tuple(r.best) for r in results)
    for row, res in zip(rows, results, strict=True):
        assert row["model_epochs"] == res.evaluations * 1 * 2
        assert row["best_by_score"]["accuracy"] == row["best"]
        assert row["same_scheme"] == (row["best_by_score"]["loss"] == row["best"])
        assert row["val_acc"] == res.best_fitness and row["val_loss"] > 0
    # the first search is also the stage's search.json (its figures), byte for byte
    assert ((tmp_path / "out/search.json").read_bytes()
            == (tmp_path / "out/searches/seed0/search.json").read_bytes())
    # the two searches differ in their swarm's and fitness runs' seed
    first = json.loads((tmp_path / "out/searches/seed0/search.json").read_text())
    second = json.loads((tmp_path / "out/searches/seed1/search.json").read_text())
    assert first["history"][0]["position"] != second["history"][0]["position"]
