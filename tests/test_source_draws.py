"""Sources pretrained under several seeds (issue 20): training seed s trains the sources of
draw s mod n, and the search at position p searched on draw p mod n, so with n dividing the
number of searches every seed trains the draw its scheme was searched on. A mix-up would
leave every number plausible, so each run's models are checked against their checkpoints."""

from __future__ import annotations

import json
import os

import pytest
import torch

from amcf.models.build import SourceSpec, build_model
from amcf.models.checkpoint import save_checkpoint
from amcf.train.config import FitnessConfig, TrainConfig
from compendium import results
from compendium.stages import baselines, runs
from compendium.stages import search as search_stage
from compendium.stages.amcf import run_amcf_and_select
from compendium.stages.runs import Setting, draw_for_seed, run_amcf_variant, source_draws

ARCH = "amcf_resnet_tiny"


def test_each_draw_takes_its_checkpoint_and_a_single_file_serves_every_draw():
    draws = source_draws({"a": {"arch": ARCH, "weights": ["a0.pt", "a1.pt"]},
                          "b": {"arch": ARCH, "weights": "hub"}})
    assert [[(s.name, s.weights) for s in d] for d in draws] == [
        [("a", "a0.pt"), ("b", "hub")], [("a", "a1.pt"), ("b", "hub")]]
    assert [draw_for_seed(draws, s)[0].weights for s in range(5)] == [
        "a0.pt", "a1.pt", "a0.pt", "a1.pt", "a0.pt"]
    assert len(source_draws({"a": {"arch": ARCH, "weights": None}})) == 1
    with pytest.raises(ValueError, match="same number of draws"):
        source_draws({"a": {"arch": ARCH, "weights": ["a0.pt", "a1.pt"]},
                      "b": {"arch": ARCH, "weights": ["b0.pt"]}})


@pytest.fixture(scope="module")
def two_draws(tmp_path_factory):
    """Sources a and b, each pretrained twice (random weights, distinct per draw)."""
    root = tmp_path_factory.mktemp("draws")
    sources = {}
    for i, name in enumerate(["a", "b"]):
        files = []
        for d in range(2):
            torch.manual_seed(200 + 10 * i + d)
            model = build_model(SourceSpec(name=name, arch=ARCH, weights=None), 10, in_chans=1)
            files.append(str(root / f"{name}{d}.pt"))
            save_checkpoint(model, files[-1], arch=ARCH, in_chans=1)
        sources[name] = {"arch": ARCH, "weights": files}
    return sources


@pytest.fixture
def built(monkeypatch):
    """The weights files of every model set the runs build, in the order they build them."""
    seen = []
    real = runs.build_frozen

    def spy(sources, *args, **kwargs):
        seen.append([s.weights for s in sources])
        return real(sources, *args, **kwargs)

    monkeypatch.setattr(runs, "build_frozen", spy)
    return seen


def _setting(digits, sources, tmp_path, schemes=((0, 0),)):
    return Setting(splits=digits, **runs.source_fields(sources), scheme=schemes[0],
                   schemes=schemes, train=TrainConfig(epochs=1, batch_size=128, lr=0.05,
                                                      progress=False),
                   results_dir=tmp_path / "results", work_dir=tmp_path / "work")


def test_each_seed_trains_the_sources_of_draw_s_mod_n(digits, two_draws, tmp_path, built,
                                                      monkeypatch):
    monkeypatch.setenv("AMCF_LOCAL_WORKERS", "1")  # in this process, where the spies are
    setting = _setting(digits, two_draws, tmp_path)
    files = {d: [two_draws[n]["weights"][d] for n in ("a", "b")] for d in (0, 1)}
    for seed in range(4):
        run_amcf_variant(setting, seed)
    assert built == [files[s % 2] for s in range(4)]
    # a subset of sources, given by name (the K ablation, ALS), comes from the seed's draw
    built.clear()
    run_amcf_variant(setting, 3, method="amcf-k1", sources=[setting.sources[1]], scheme=(0,))
    assert built == [[files[1][1]]]
    # AMCF's own run, the ensemble's and a single-source baseline's
    monkeypatch.setattr("compendium.stages.amcf.build_frozen", runs.build_frozen)
    built.clear()
    run_amcf_and_select(setting, 1)
    assert built == [files[1]]
    finetuned = []
    real = baselines.finetune
    monkeypatch.setattr(baselines, "finetune", lambda sources, *a, **k: (
        finetuned.append([s.weights for s in sources]) or real(sources, *a, **k)))
    baselines.run_finetune(setting, 5)
    assert finetuned == [files[1]]
    single = []
    real_build = baselines.build_baseline
    monkeypatch.setattr(baselines, "build_baseline", lambda m, sources, *a, **k: (
        single.append([s.weights for s in sources]) or real_build(m, sources, *a, **k)))
    baselines._single_result(setting, 2, "scratch", setting.sources[1], {})
    baselines._single_result(setting, 3, "scratch", setting.sources[1], {})
    assert single == [[files[0][1]], [files[1][1]]]


def test_the_search_at_position_p_searches_draw_p_mod_n(digits, two_draws, tmp_path,
                                                         monkeypatch):
    monkeypatch.setenv("AMCF_LOCAL_WORKERS", "1")
    searched = {}

    def fake(splits, sources, pso, fitness, lam, out_dir, work_dir, freeze_bn_stats=False):
        from amcf.search.result import SearchResult

        searched[pso["seed"]] = [s.weights for s in sources]
        result = SearchResult("pso", (0, 0), 0.5, 1, 1,
                              [{"scheme": [0, 0], "fitness": 0.5}], {"seed": pso["seed"]})
        results.write_search(out_dir, [s.name for s in sources], result)
        return result

    monkeypatch.setattr(search_stage, "run_search", fake)
    draws = source_draws(two_draws)
    fitness = FitnessConfig(epochs=1, batch_size=128, progress=False)
    search_stage.run_searches(digits, draws[0], {"particles": 2, "iterations": 1}, fitness,
                              0.2, [7, 3, 9, 1], tmp_path / "digits", tmp_path / "work",
                              draws=draws)
    weights = {d: [s.weights for s in draws[d]] for d in (0, 1)}
    assert searched == {7: weights[0], 3: weights[1], 9: weights[0], 1: weights[1]}
    listed = json.loads((tmp_path / "digits" / "searches.json").read_text())["searches"]
    assert [row["seed"] for row in listed] == [7, 3, 9, 1]
    with pytest.raises(ValueError, match="must divide the number of searches"):
        search_stage.run_searches(digits, draws[0], {"particles": 2, "iterations": 1},
                                  fitness, 0.2, [7, 3, 9], tmp_path / "d3", tmp_path / "work",
                                  draws=draws)


def test_pretrain_trains_each_draw_under_its_own_seed_side_by_side(tmp_path, monkeypatch):
    from pathlib import Path

    from amcf.models.checkpoint import read_weights
    from compendium.data import commands
    from compendium.stages.pretrain import draw_checkpoint, pretrain_stage

    repo = Path(__file__).resolve().parents[1]
    data = repo / "data"
    if not (data / "digits").is_dir():  # a fresh clone before `make data`: fetch digits alone
        mirror = Path(os.environ.get("AMCF_DATA_MIRROR", repo.parent / "shared" / "data"))
        if not mirror.is_dir():
            pytest.skip("neither data/digits nor a data mirror (AMCF_DATA_MIRROR)")
        data = tmp_path / "data"
        commands.fetch("embedded", ["digits"], data, mirror, log=lambda *_: None)
    prepared = tmp_path / "prepared"
    commands.prepare("embedded", ["digits"], data, prepared, log=lambda *_: None)
    recipe = {"epochs": 1, "batch_size": 16, "lr": 0.05, "seed": 3}

    def pretrain(out: str, draws: int, workers: str):
        monkeypatch.setenv("AMCF_LOCAL_WORKERS", workers)
        found = pretrain_stage("a", "digits", ARCH, None, recipe, prepared,
                               tmp_path / out / "ckpt", tmp_path / out / "results",
                               tmp_path / out / "work", draws=draws)
        return found, [read_weights(draw_checkpoint(tmp_path / out / "ckpt", d)).state_dict
                       for d in range(draws)]

    found, weights = pretrain("two", 2, "2")  # side by side in two worker processes
    alone, [first] = pretrain("one", 1, "1")  # one draw, in this process
    state = [{k: v for k, v in w.items() if v.is_floating_point()} for w in weights]
    assert any(not torch.equal(state[0][k], state[1][k]) for k in state[0])  # own seeds
    assert all(torch.equal(first[k], weights[0][k]) for k in first)  # draw 0 is the same bits
    assert found[0] == alone[0]
    listed = json.loads((tmp_path / "two/results/draws.json").read_text())
    assert [(d["draw"], d["seed"]) for d in listed["draws"]] == [(0, 3), (1, 4)]
    assert [d["test_acc"] for d in listed["draws"]] == [m["test_acc"] for m in found]
    for d in (0, 1):
        out = results.source_draw_dir(tmp_path / "two/results", d)
        assert json.loads((out / "metrics.json").read_text())["draw"] == d
        assert (out / "curves.png").is_file() and (out / "history.csv").is_file()
    assert results.read_layers(tmp_path / "two/results")  # one table for the source
    with pytest.raises(ValueError, match="draws must be >= 1"):
        pretrain_stage("a", "digits", ARCH, None, recipe, prepared, tmp_path / "x",
                       tmp_path / "x", tmp_path / "x", draws=0)


def test_the_draws_check_moves_every_seed_past_the_committed_ones():
    from pathlib import Path

    import yaml

    from scripts.draws_check import fresh_params

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    fresh = fresh_params(params)

    def pretrain_seeds(p):
        return {n: set(range(e["train"].get("seed", 0), e["train"].get("seed", 0)
                             + e.get("draws", 1))) for n, e in p["pretrain"].items()}

    old, new = pretrain_seeds(params), pretrain_seeds(fresh)
    assert all(not old[n] & new[n] for n in old)  # no source draw in common
    assert not set(params["search"]["search_seeds"]) & set(fresh["search"]["search_seeds"])
    assert not set(params["final"]["seeds"]) & set(fresh["final"]["seeds"])
    assert len(fresh["final"]["seeds"]) == len(params["final"]["seeds"])
    assert fresh["baselines"]["methods"] == ["finetune"]
    assert params["baselines"]["methods"] != ["finetune"]  # the input is left as it was
