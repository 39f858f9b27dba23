"""AMLS fitness and search wiring: validation accuracy only, repeatable, the paper's ranges."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import Dataset

from amcf.amls import make_fitness, run_amls
from amcf.layers import freeze_bottom, num_layers
from amcf.objective import MCLoss
from amcf.train.config import TrainConfig
from amcf.train.fit import fit

CONFIG = TrainConfig(epochs=3, batch_size=64, lr=0.05, seed=3, progress=False)


class _Exploding(Dataset):
    def __len__(self):
        raise AssertionError("the test split was read")

    def __getitem__(self, i):
        raise AssertionError("the test split was read")


@pytest.fixture
def no_test(digits):
    return dataclasses.replace(digits, test=_Exploding())


def _builder(make_cnn):
    # seeds from torch's global stream, as build_model's fresh heads do
    return lambda j: make_cnn(seed=int(torch.randint(0, 1000, ())))


def test_fitness_is_best_val_acc_and_never_reads_test(no_test, make_cnn):
    build = _builder(make_cnn)
    fitness = make_fitness(["a", "b"], no_test, CONFIG, lam=0.2, build=build)
    value = fitness((1, 0))

    # the same run done by hand: reseed, build, freeze, train, read validation accuracy
    torch.manual_seed(CONFIG.seed)
    models = [build(0), build(1)]
    freeze_bottom(models[0], 1)
    freeze_bottom(models[1], 0)
    result = fit(models, no_test, CONFIG.model_copy(update={"eval_test": False}), MCLoss(0.2))
    val = [row["val_acc"] for row in result.history]
    assert value == max(val)
    assert value > 0.5  # 10 classes: it learnt
    assert fitness.records[-1]["scheme"] == [1, 0] and fitness.records[-1]["val_acc"] == val
    assert all(row["test_acc"] is None for row in result.history)


def test_fitness_repeats_and_starts_from_unchanged_weights(no_test, make_cnn):
    fitness = make_fitness(["a", "b"], no_test, CONFIG, build=_builder(make_cnn))
    first = fitness((0, 0))
    start = [{k: v.clone() for k, v in m.state_dict().items()} for m in fitness.templates()]
    assert fitness([0.0, 0.9]) == first  # positions are truncated: (0, 0) again
    probe = fitness((2, 2))  # both convs frozen: a linear probe on random features
    assert probe != first
    for m, sd in zip(fitness.templates(), start, strict=True):
        assert all(torch.equal(v, sd[k]) for k, v in m.state_dict().items())
        assert all(p.requires_grad for p in m.parameters())


def test_fitness_rejects_bad_schemes(no_test, make_cnn):
    fitness = make_fitness(["a", "b"], no_test, CONFIG, build=_builder(make_cnn))
    with pytest.raises(ValueError, match="one layer count per source"):
        fitness((1,))
    with pytest.raises(ValueError, match=r"0\.\.2"):
        fitness((3, 0))
    with pytest.raises(ValueError, match="lam"):
        make_fitness(["a"], no_test, CONFIG, lam=-1, build=_builder(make_cnn))


def test_freeze_bn_stats_reaches_the_freezer(no_test, make_cnn):
    calls = []

    def spy(model, k, *, freeze_bn_stats=False):
        calls.append((k, freeze_bn_stats))
        return freeze_bottom(model, k, freeze_bn_stats=freeze_bn_stats)

    make_fitness(["a", "b"], no_test, CONFIG.model_copy(update={"epochs": 1}),
                 freeze_bn_stats=True, build=_builder(make_cnn), freeze=spy)((2, 1))
    assert calls == [(2, True), (1, True)]


def test_run_amls_searches_layer_ranges_of_each_model(no_test, make_cnn, tmp_path):
    class Deeper(torch.nn.Module):  # three convs: a different layer count per source
        def __init__(self):
            super().__init__()
            self.conv0 = torch.nn.Conv2d(1, 1, 1)
            self.body = make_cnn()

        def forward(self, x):
            return self.body(self.conv0(x))

    build = {0: lambda: make_cnn(width=8), 1: Deeper}
    seen = {}

    def fake_search(fitness, dims, low=0, high=48, state_path=None, context=None, **settings):
        seen.update(dims=dims, high=high, state_path=state_path, context=context, **settings)
        return fitness((high[0], 0))

    value = run_amls(["a", "b"], no_test, {"particles": 4, "seed": 7}, CONFIG,
                     state_path=tmp_path / "s.json", build=lambda j: build[j](),
                     search=fake_search)
    assert seen["dims"] == 2 and seen["high"] == [1, 2]  # 2 and 3 layers -> [0, n - 1]
    assert seen["particles"] == 4 and seen["seed"] == 7
    assert seen["context"]["dataset"] == "digits" and seen["context"]["lam"] == 0.2
    assert 0 < value <= 1
    with pytest.raises(ValueError, match="high"):
        run_amls(["a", "b"], no_test, {"high": 5}, CONFIG, build=lambda j: build[j](),
                 search=fake_search)


def test_run_amls_with_pso_and_real_models(no_test, tmp_path):
    from amcf.models import SourceSpec, build_model, save_checkpoint

    # a "pretrained" source written in amcf's checkpoint format, and a random-init one
    torch.manual_seed(0)
    source = build_model(SourceSpec(name="s", arch="amcf_resnet_tiny", weights=None), 5,
                         in_chans=1)
    path = tmp_path / "tiny.pt"
    save_checkpoint(source, path, arch="amcf_resnet_tiny", classes=list("abcde"), in_chans=1,
                    meta={})
    sources = [SourceSpec(name="pre", arch="amcf_resnet_tiny", weights=str(path)),
               SourceSpec(name="rand", arch="amcf_resnet_tiny", weights=None)]
    config = CONFIG.model_copy(update={"epochs": 1})
    state = tmp_path / "search.json"
    result = run_amls(sources, no_test, {"particles": 2, "iterations": 1, "seed": 0}, config,
                      state_path=state)
    n = num_layers(build_model(sources[1], 10, in_chans=1))
    assert n == 11
    assert result.calls == 4 and len(result.best) == 2
    assert all(0 <= k <= n - 1 for k in result.best)
    assert result.best_fitness == max(row["fitness"] for row in result.history)
    assert state.exists()
    # a finished search is read back from its state file without training again
    again = run_amls(sources, no_test, {"particles": 2, "iterations": 1, "seed": 0}, config,
                     state_path=state, freeze=lambda *a, **k: pytest.fail("trained again"))
    assert again.best == result.best and again.best_fitness == result.best_fitness
