"""The paper's layer convention and bottom-k freezing."""

import pytest
import timm
import torch
from torch import nn

import amcf.models  # noqa: F401  (registers cifar_resnet*, amcf_resnet_tiny)
from amcf.layers import freeze_bottom, layer_starts, layer_table, num_layers


@pytest.fixture(scope="module")
def resnet50():
    return timm.create_model("resnet50", pretrained=False)


def literal_spec_scheme(model: nn.Module, k: int) -> dict[str, bool]:
    """The spec's loop, written out: every param named "conv" starts a layer; everything
    before conv #k is frozen; the fc head trains."""
    names = [n for n, _ in model.named_parameters()]
    conv_positions = [i for i, n in enumerate(names) if "conv" in n]
    cut = conv_positions[k] if k < len(conv_positions) else len(names)
    return {n: i >= cut or n.startswith("fc.") for i, n in enumerate(names)}


def trainable(model: nn.Module) -> dict[str, bool]:
    return {n: p.requires_grad for n, p in model.named_parameters()}


def test_resnet50_has_49_layers_starting_at_the_convs(resnet50):
    starts = layer_starts(resnet50)
    assert len(starts) == num_layers(resnet50) == 49
    assert starts[0] == "conv1.weight"
    assert starts[-1] == "layer4.2.conv3.weight"
    assert not any("downsample" in s for s in starts)


def test_freeze_bottom_matches_the_spec_loop_on_resnet50(resnet50):
    # Descending then ascending k on one model: a later call must also unfreeze.
    for k in (49, 0, 10, 1, 48, 4, 3):
        freeze_bottom(resnet50, k)
        assert trainable(resnet50) == literal_spec_scheme(resnet50, k), f"k={k}"


def test_freeze_bottom_resnet50_edge_schemes(resnet50):
    freeze_bottom(resnet50, 0)
    assert all(p.requires_grad for p in resnet50.parameters())
    freeze_bottom(resnet50, 49)  # linear probe
    assert [n for n, t in trainable(resnet50).items() if t] == ["fc.weight", "fc.bias"]
    freeze_bottom(resnet50, 48)
    assert [n for n, t in trainable(resnet50).items() if t] == [
        "layer4.2.conv3.weight",
        "layer4.2.bn3.weight",
        "layer4.2.bn3.bias",
        "fc.weight",
        "fc.bias",
    ]
    # The first block's downsample branch completes with layer 3 (layer1.0.conv3).
    freeze_bottom(resnet50, 3)
    assert resnet50.layer1[0].downsample[0].weight.requires_grad
    freeze_bottom(resnet50, 4)
    assert not resnet50.layer1[0].downsample[0].weight.requires_grad
    assert resnet50.layer1[1].conv1.weight.requires_grad


@pytest.mark.parametrize("k", [-1, 50])
def test_freeze_bottom_out_of_range_names_the_valid_range(resnet50, k):
    with pytest.raises(ValueError, match=r"0\.\.49"):
        freeze_bottom(resnet50, k)


def test_freeze_bottom_rejects_fractional_k(resnet50):
    with pytest.raises(TypeError, match="integer"):
        freeze_bottom(resnet50, 2.5)


@pytest.mark.parametrize(
    ("arch", "layers"),
    [("amcf_resnet_tiny", 11), ("cifar_resnet20", 19), ("cifar_resnet32", 31),
     ("cifar_resnet56", 55)],
)
def test_layer_counts_of_amcf_archs(arch, layers):
    assert num_layers(timm.create_model(arch)) == layers


def test_deep_stem_batch_norms_do_not_start_layers():
    # conv1.1 is the BatchNorm inside timm's deep stem: named "conv", but not a convolution.
    starts = layer_starts(timm.create_model("amcf_resnet_tiny"))
    assert starts[:3] == ["conv1.0.weight", "conv1.3.weight", "conv1.6.weight"]
    assert "conv1.1.weight" not in starts


@pytest.mark.parametrize(
    ("arch", "head"), [("amcf_resnet_tiny", "fc"), ("cifar_resnet20", "linear")]
)
def test_linear_probe_trains_only_the_head(arch, head):
    model = timm.create_model(arch, num_classes=5)
    freeze_bottom(model, num_layers(model))
    assert [n for n, t in trainable(model).items() if t] == [f"{head}.weight", f"{head}.bias"]


def _bn_state(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, ...]:
    return bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone()


def _changed(before, bn) -> bool:
    return not all(torch.equal(a, b) for a, b in zip(before, _bn_state(bn), strict=True))


def test_freeze_bn_stats_keeps_frozen_running_stats():
    torch.manual_seed(0)
    model = timm.create_model("amcf_resnet_tiny", num_classes=3).train()
    x = torch.randn(8, 1, 28, 28)
    # k=2: stem conv1.0 and conv1.3 with their BNs conv1.1 and conv1.4 are frozen.
    frozen_bn, open_bn = model.conv1[1], model.bn1

    freeze_bottom(model, 2, freeze_bn_stats=True)
    assert not frozen_bn.weight.requires_grad and open_bn.weight.requires_grad
    before_frozen, before_open = _bn_state(frozen_bn), _bn_state(open_bn)
    model(x)
    assert not _changed(before_frozen, frozen_bn)
    assert _changed(before_open, open_bn)

    # Default (the paper's script): frozen BN layers keep updating their statistics.
    freeze_bottom(model, 2)
    model.train()
    before_frozen = _bn_state(frozen_bn)
    model(x)
    assert _changed(before_frozen, frozen_bn)


def test_frozen_bn_stats_normalise_with_running_stats_in_train_mode():
    torch.manual_seed(0)
    model = timm.create_model("amcf_resnet_tiny", num_classes=3)
    freeze_bottom(model, num_layers(model), freeze_bn_stats=True)
    x = torch.randn(4, 1, 28, 28)
    train_out = model.train()(x)
    eval_out = model.eval()(x)
    torch.testing.assert_close(train_out, eval_out)


def test_fallback_convention_without_conv_names():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3),
    )
    assert layer_starts(model) == ["0.weight", "2.weight", "6.weight"]
    freeze_bottom(model, 1)
    assert [n for n, t in trainable(model).items() if not t] == ["0.weight", "0.bias"]
    freeze_bottom(model, 3)
    assert [n for n, t in trainable(model).items() if t] == ["8.weight", "8.bias"]
    with pytest.raises(ValueError, match=r"0\.\.3"):
        freeze_bottom(model, 4)


def test_layer_table_rows_account_for_every_weight(resnet50):
    rows = layer_table(resnet50)
    assert [r.index for r in rows] == list(range(49))
    assert rows[0].start == "conv1.weight" and rows[0].module == "conv1"
    # Layer 3 = layer1.0.conv3 (64->256, 1x1) + bn3 + the block's downsample conv + bn.
    assert rows[3].module == "layer1.0.conv3"
    assert rows[3].params == 64 * 256 + 2 * 256 + 64 * 256 + 2 * 256
    head = sum(p.numel() for p in resnet50.fc.parameters())
    assert sum(r.params for r in rows) + head == sum(p.numel() for p in resnet50.parameters())
