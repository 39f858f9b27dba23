"""AdaFilter (Guo et al., AAAI 2020): gates choose, per example and filter, which copy runs."""

import copy

import pytest
import timm
import torch
import torch.nn.functional as F

import amcf.models  # noqa: F401  (registers amcf_resnet_tiny)
from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from compendium.methods.baselines.adafilter import AdaFilterNet, GatedConvBN, gumbel_sigmoid_gate


def _tiny(seed=0):
    torch.manual_seed(seed)
    return timm.create_model("amcf_resnet_tiny", num_classes=10, in_chans=1)


def _perturb_tuned(net, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in net.gated_layers():
            for p in list(layer.tuned.parameters()) + list(layer.bn_tuned.parameters()):
                p.add_(0.3 * torch.randn(p.shape, generator=g))


def _x(n=6, seed=0):
    return torch.randn(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("train", [False, True])
def test_gates_off_give_the_pretrained_model_on_give_the_tuned_one(train):
    original = _tiny()
    net = AdaFilterNet(copy.deepcopy(original))
    assert net.num_gated == 8  # 4 basic blocks x 2 convs
    _perturb_tuned(net)
    # the reference for gates = 1: the original architecture carrying the tuned weights
    tuned = copy.deepcopy(original)
    blocks = [b for b in tuned.modules() if type(b).__name__ == "BasicBlock"]
    layers = iter(net.gated_layers())
    for block in blocks:
        for i in (1, 2):
            layer = next(layers)
            getattr(block, f"conv{i}").load_state_dict(layer.tuned.state_dict())
            getattr(block, f"bn{i}").load_state_dict(layer.bn_tuned.state_dict())
    for m in (original, tuned, net):
        m.train(train)
    x = _x()
    net.force_gates(0.0)
    torch.testing.assert_close(net(x), original(x))
    net.force_gates(1.0)
    torch.testing.assert_close(net(x), tuned(x))
    assert not torch.allclose(tuned(x), original(x), atol=1e-3)


def test_gates_are_binary_per_example_and_filter():
    net = AdaFilterNet(_tiny())
    net.train()
    net(_x())
    gates = net.policy.last_gates
    assert [g.shape for g in gates][:2] == [(6, 16), (6, 16)]
    assert all(((g == 0) | (g == 1)).all() for g in gates)
    assert 0.2 < net.fine_tuned_fraction() < 0.8  # sampled, not stuck
    net.eval()
    net(_x())
    first = [g.clone() for g in net.policy.last_gates]
    net(_x())
    assert all(torch.equal(a, b) for a, b in zip(first, net.policy.last_gates, strict=True))
    logits = torch.tensor([-2.0, 0.5])
    assert gumbel_sigmoid_gate(logits, training=False).tolist() == [0.0, 1.0]


def test_only_filters_whose_gate_was_on_are_updated():
    torch.manual_seed(3)
    net = AdaFilterNet(_tiny())
    _perturb_tuned(net)  # as after earlier steps: the two copies differ
    with torch.no_grad():
        for head in net.policy.readout:
            head.bias.fill_(-1.5)  # gates mostly off, so whole filters stay off in a batch
    net.train()
    before = copy.deepcopy(net)
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.randn(4, 1, 64, 64), torch.tensor([0, 1, 2, 3])
    F.cross_entropy(net(x), y).backward()
    on_any = [g.amax(dim=0).bool() for g in net.policy.last_gates]
    policy_grads = [p.grad for p in net.policy.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in policy_grads)
    opt.step()
    moved_on, off = [], 0
    for layer, old, on in zip(net.gated_layers(), before.gated_layers(), on_any, strict=True):
        moved = (layer.tuned.weight != old.tuned.weight).flatten(1).any(dim=1)
        moved_bn = layer.bn_tuned.weight != old.bn_tuned.weight
        # a filter whose gate was off for every example gets no update at all
        assert not (moved & ~on).any() and not (moved_bn & ~on).any()
        moved_on.append(moved[on])
        off += int((~on).sum())
        assert torch.equal(layer.frozen.weight, old.frozen.weight)
        assert torch.equal(layer.bn_frozen.weight, old.bn_frozen.weight)
    # ... and (bar an exactly-zero gradient, e.g. behind a dead ReLU) one that was on moves
    moved_on = torch.cat(moved_on)
    assert off > 10 and moved_on.numel() > 10
    assert moved_on.float().mean() > 0.9


def test_resnet50_blocks_are_wrapped():
    torch.manual_seed(0)
    model = timm.create_model("resnet50", num_classes=5)
    original = copy.deepcopy(model).eval()
    net = AdaFilterNet(model).eval()
    assert net.num_gated == 48  # 16 bottlenecks x 3 convs; stem and downsample not gated
    assert all(isinstance(b.conv3, GatedConvBN)
               for b in net.modules() if type(b).__name__ == "Bottleneck")
    net.force_gates(0.0)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(net(x), original(x))
    assert net.get_classifier() is model.fc


def test_non_resnet_is_refused(make_cnn):
    with pytest.raises(ValueError, match="BasicBlock/Bottleneck"):
        AdaFilterNet(make_cnn())


def test_fit_trains_policy_and_tuned_filters_and_keeps_pretrained_ones(digits):
    net = AdaFilterNet(_tiny())
    start = copy.deepcopy(net)
    config = TrainConfig(epochs=2, batch_size=64, progress=False, eval_test=False)
    result = fit([net], digits, config)
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]
    for new, old in zip(net.gated_layers(), start.gated_layers(), strict=True):
        assert torch.equal(new.frozen.weight, old.frozen.weight)
        assert not torch.equal(new.tuned.weight, old.tuned.weight)
    changed = [not torch.equal(a, b) for a, b in
               zip(net.policy.parameters(), start.policy.parameters(), strict=True)]
    assert all(changed)
