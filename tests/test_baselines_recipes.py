"""The configuration-only baselines, DML and ALS: recipes of (models, objective) for fit."""

import copy

import pytest
import timm
import torch

from amcf.loss import collaborative_loss
from amcf.models import SourceSpec, save_checkpoint
from amcf.objective import MCLoss
from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from compendium.methods.ablations.amcf_dml import DeepMutualLearning, mutual_learning_loss
from compendium.methods.baselines.adafilter import AdaFilterNet
from compendium.methods.baselines.als import als_budget
from compendium.methods.baselines.childtune import ChildTuningD
from compendium.methods.baselines.l2sp import L2SP
from compendium.methods.registry import BASELINE_RUNS
from compendium.stages.baselines import (
    BASELINES,
    baseline_params,
    build_baseline,
    single_source_runs,
)


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    torch.manual_seed(0)
    model = timm.create_model("amcf_resnet_tiny", num_classes=10, in_chans=1)
    path = save_checkpoint(model, tmp_path_factory.mktemp("src") / "tiny.pt",
                           arch="amcf_resnet_tiny")
    return SourceSpec(name="tiny", arch="amcf_resnet_tiny", weights=str(path)), model


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values(), strict=True))


def test_lam0_gives_each_model_its_standalone_gradient(make_cnn):
    x = torch.randn(8, 1, 8, 8)
    y = torch.randint(0, 10, (8,))
    alone, pair = make_cnn(seed=0), [make_cnn(seed=0), make_cnn(seed=1)]
    collaborative_loss([alone(x)], y, lam=0.0).backward()
    collaborative_loss([m(x) for m in pair], y, lam=0.0).backward()
    for a, b in zip(alone.parameters(), pair[0].parameters(), strict=True):
        assert torch.equal(a.grad, b.grad)
    # with the MC term the models do interact
    pair = [make_cnn(seed=0), make_cnn(seed=1)]
    collaborative_loss([m(x) for m in pair], y, lam=0.2).backward()
    assert not all(torch.equal(a.grad, b.grad)
                   for a, b in zip(alone.parameters(), pair[0].parameters(), strict=True))


def test_finetune_run_of_k_models_is_k_standalone_runs(digits, make_cnn):
    config = TrainConfig(epochs=2, batch_size=128, progress=False)
    single = [make_cnn(seed=0)]
    pair = [make_cnn(seed=0), make_cnn(seed=1)]
    one = fit(single, digits, config, MCLoss(lam=0.0))
    two = fit(pair, digits, config, MCLoss(lam=0.0))
    assert _same(single[0], pair[0])  # model 0 trained exactly as on its own
    assert two.history[-1]["val_acc_m0"] == one.history[-1]["val_acc_m0"]
    # the same run's fused prediction is the ensemble baseline: not just model 0's
    assert [r["val_acc"] for r in two.history] != [r["val_acc_m0"] for r in two.history]


def test_recipes_build_the_right_models(tiny_source):
    spec, pretrained = tiny_source
    models, obj = build_baseline("finetune", [spec, spec], 5, in_chans=1)
    assert len(models) == 2 and type(obj) is MCLoss and obj.lam == 0.0
    assert all(p.requires_grad for p in models[0].parameters())
    body = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("fc.")}
    assert all(torch.equal(models[0].state_dict()[k], v) for k, v in body.items())

    models, _ = build_baseline("linear", spec, 5)
    trainable = {n for n, p in models[0].named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}

    a, _ = build_baseline("scratch", spec, 5, seed=1)
    b, _ = build_baseline("scratch", spec, 5, seed=1)
    c, _ = build_baseline("scratch", spec, 5, seed=2)
    assert _same(a[0], b[0]) and not _same(a[0], c[0])
    assert not torch.equal(a[0].state_dict()["conv1.0.weight"], body["conv1.0.weight"])

    models, obj = build_baseline("adafilter", spec, 5)
    assert isinstance(models[0], AdaFilterNet) and models[0].num_gated == 8
    assert isinstance(build_baseline("l2sp", spec, 5, alpha=0.1)[1], L2SP)
    assert isinstance(build_baseline("childtune-d", spec, 5)[1], ChildTuningD)


def test_bad_names_and_settings_are_refused_before_building(tiny_source):
    spec, _ = tiny_source
    with pytest.raises(ValueError, match="unknown baseline 'l2-sp'.*l2sp"):
        build_baseline("l2-sp", spec, 5)
    with pytest.raises(ValueError, match=r"no setting \['alpah'\].*alpha"):
        build_baseline("l2sp", spec, 5, alpah=0.1)
    with pytest.raises(ValueError, match="SourceSpec"):
        build_baseline("finetune", ["tiny"], 5)
    assert baseline_params("childtune-f") == ["p"]


def test_recipes_are_keyed_by_the_method_tables_run_ids():
    # every baseline run but ALS (a search, als_search) has a recipe in its own file, and no
    # recipe runs under a name the table does not know
    assert {m.run for m in BASELINES if m.recipe is not None} == set(BASELINE_RUNS) - {"als"}
    assert set(single_source_runs()) <= set(BASELINE_RUNS)


def test_dml_objective_is_the_mutual_learning_loss():
    z = [torch.randn(4, 3), torch.randn(4, 3)]
    y = torch.tensor([0, 1, 2, 0])
    obj = DeepMutualLearning(lam=0.5, temperature=2.0)
    torch.testing.assert_close(obj.loss(z, y), mutual_learning_loss(z, y, 0.5, 2.0))
    assert obj.loss(z, y) > collaborative_loss(z, y, lam=0.0)
    torch.testing.assert_close(obj.loss(z[:1], y), collaborative_loss(z[:1], y, lam=0.0))
    with pytest.raises(ValueError, match="temperature"):
        DeepMutualLearning(temperature=0)


def test_als_budget_matches_amls():
    assert als_budget() == 60  # 10 particles, 5 iterations: 10 + 50
    assert als_budget(4, 2) == 12
    with pytest.raises(ValueError, match="particles"):
        als_budget(0, 5)


def test_als_search_spends_the_amls_budget_on_one_source(tiny_source, digits, tmp_path):
    from compendium.methods.baselines.als import als_search

    spec, _ = tiny_source
    config = TrainConfig(epochs=1, batch_size=128, progress=False, eval_test=False)
    result = als_search(spec, digits, config, particles=2, iterations=1, seed=0,
                        state_path=tmp_path / "als.json")
    assert result.calls == 4
    assert len(result.best) == 1 and 0 <= result.best[0] <= 10
    assert 0.0 <= result.best_fitness <= 1.0


def test_adafilter_copy_is_independent():
    # deep copies (used by tests and by callers that snapshot a model) keep their own policy
    torch.manual_seed(0)
    net = AdaFilterNet(timm.create_model("amcf_resnet_tiny", num_classes=3, in_chans=1))
    twin = copy.deepcopy(net)
    assert twin.gated_layers()[0]._policy is twin.policy
    assert net.gated_layers()[0]._policy is net.policy
