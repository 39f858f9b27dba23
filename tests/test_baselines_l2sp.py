"""L2-SP (Li et al., ICML 2018): the pull towards the pretrained weights."""

import copy

import pytest
import torch

from amcf.objective import MCLoss
from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from compendium.methods.baselines.l2sp import L2SP, optimizer_weight_decay


def _setup(model, **kw):
    obj = L2SP(**kw)
    obj.setup([model], torch.Generator().manual_seed(0))
    return obj


def _body(model):
    return [p for n, p in model.named_parameters() if not n.startswith("fc.")]


def _displace(model, direction, t):
    with torch.no_grad():
        for p, d in zip(_body(model), direction, strict=True):
            p.add_(t * d)


def test_penalty_is_zero_at_the_pretrained_weights(make_cnn):
    model = make_cnn()
    assert _setup(model, alpha=0.5, beta=0.0).penalty([model]).item() == 0.0
    # the head is new: its term is plain beta/2 * ||w||^2 from the start
    obj = _setup(model, alpha=0.5, beta=0.2)
    head = sum((p**2).sum() for p in model.fc.parameters())
    assert obj.penalty([model]).item() == pytest.approx(0.1 * head.item(), rel=1e-6)


def test_penalty_grows_quadratically_away_from_the_start(make_cnn):
    model = make_cnn()
    obj = _setup(model, alpha=0.3, beta=0.0)
    direction = [torch.randn_like(p) for p in _body(model)]
    sq = sum((d**2).sum() for d in direction).item()
    values = []
    for _ in range(3):
        _displace(model, direction, 1.0)
        values.append(obj.penalty([model]).item())
    for t, v in enumerate(values, start=1):
        assert v == pytest.approx(0.5 * 0.3 * t**2 * sq, rel=1e-4)
    assert values[1] / values[0] == pytest.approx(4.0, rel=1e-4)


def test_gradient_points_back_to_the_start(make_cnn):
    model = make_cnn()
    start = copy.deepcopy(model)
    obj = _setup(model, alpha=0.4, beta=0.1)
    direction = [torch.randn_like(p) for p in _body(model)]
    _displace(model, direction, 0.5)
    obj.penalty([model]).backward()
    for p, d in zip(_body(model), direction, strict=True):
        torch.testing.assert_close(p.grad, 0.4 * 0.5 * d)
    torch.testing.assert_close(model.fc.weight.grad, 0.1 * model.fc.weight.detach())
    # a gradient step on the penalty moves every body weight towards its start
    def dist():
        pairs = zip(_body(model), _body(start), strict=True)
        return sum(((a - b) ** 2).sum() for a, b in pairs)

    before = dist().item()
    with torch.no_grad():
        for p in model.parameters():
            p -= 1.0 * p.grad
    assert dist().item() == pytest.approx((1 - 0.4) ** 2 * before, rel=1e-4)


def test_frozen_weights_are_left_out_and_start_survives_resume(make_cnn):
    model = make_cnn()
    model.conv1.weight.requires_grad_(False)
    obj = _setup(model)
    assert "conv1.weight" not in obj.state_dict()["start"][0]
    moved = make_cnn(seed=1)  # "the weights at a checkpoint": not the start
    resumed = L2SP()
    resumed.load_state_dict(obj.state_dict())
    resumed.setup([moved], torch.Generator())  # must keep the loaded start
    moved.conv1.weight.requires_grad_(False)
    fresh = _setup(moved)
    assert resumed.penalty([moved]).item() > fresh.penalty([moved]).item()
    with pytest.raises(ValueError, match="alpha"):
        L2SP(alpha=0.5).load_state_dict(obj.state_dict())
    with pytest.raises(ValueError, match=">= 0"):
        L2SP(alpha=-1)


def test_weight_decay_is_replaced_not_doubled():
    assert optimizer_weight_decay(L2SP(), 5e-4) == 0.0
    assert optimizer_weight_decay(MCLoss(), 5e-4) == 5e-4


def test_fit_keeps_l2sp_weights_near_the_start(digits, make_cnn):
    config = TrainConfig(epochs=2, batch_size=128, weight_decay=0.0, progress=False,
                         eval_test=False)
    dist = {}
    for alpha in (0.0, 20.0):
        model = make_cnn()
        start = [p.detach().clone() for p in _body(model)]
        fit([model], digits, config, L2SP(alpha=alpha, beta=0.0))
        pairs = zip(_body(model), start, strict=True)
        dist[alpha] = sum(((p - s) ** 2).sum() for p, s in pairs).item()
    assert dist[0.0] > 0
    assert dist[20.0] < 0.1 * dist[0.0]
