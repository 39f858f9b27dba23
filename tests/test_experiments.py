"""Methods by id through the one trainer: layout, member results, seeding, selection."""

from __future__ import annotations

import json

import pytest
import torch

from amcf.experiments import (
    Setting,
    best_single_source,
    build_frozen,
    random_scheme,
    run_amcf,
    run_finetune,
)
from amcf.models import SourceSpec, build_model, save_checkpoint
from amcf.reporting import collect
from amcf.train import TrainConfig


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Two tiny ResNet 'source models' (random weights, saved as amcf checkpoints)."""
    root = tmp_path_factory.mktemp("sources")
    specs = []
    for i, name in enumerate(["a", "b"]):
        torch.manual_seed(100 + i)
        model = build_model(SourceSpec(name=name, arch="amcf_resnet_tiny", weights=None), 10,
                            in_chans=1)
        save_checkpoint(model, root / f"{name}.pt", arch="amcf_resnet_tiny", in_chans=1)
        weights = str(root / f"{name}.pt")
        specs.append(SourceSpec(name=name, arch="amcf_resnet_tiny", weights=weights))
    return specs


def _setting(digits, sources, tmp_path, **kw):
    return Setting(splits=digits, sources=sources, scheme=(3, 0),
                   train=TrainConfig(epochs=2, batch_size=64, lr=0.05, progress=False),
                   results_dir=tmp_path / "results", work_dir=tmp_path / "work", **kw)


def test_amcf_run_is_the_same_whatever_ran_before_in_the_process(digits, sources, tmp_path):
    first = json.loads((run_amcf(_setting(digits, sources, tmp_path / "1"), 0)
                        / "metrics.json").read_text())
    torch.rand(1000)  # disturb the global RNG, as an earlier run in the same notebook would
    second = json.loads((run_amcf(_setting(digits, sources, tmp_path / "2"), 0)
                         / "metrics.json").read_text())
    for key in ("val_acc", "test_acc", "best_test_acc", "selected_epoch", "scheme"):
        assert first[key] == second[key], key
    other_seed = json.loads((run_amcf(_setting(digits, sources, tmp_path / "1"), 1)
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
        assert member["wall_time_s"] == pytest.approx(joint["wall_time_s"] / 2)
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


def test_a_finished_run_keeps_its_numbers_not_its_weights(digits, sources, tmp_path):
    setting = _setting(digits, sources, tmp_path)
    out = run_amcf(setting, 0)
    work = list((tmp_path / "work").rglob("metrics.json"))
    assert len(work) == 1 and not (work[0].parent / "checkpoint.pt").exists()
    first = (out / "metrics.json").read_text()
    (out / "metrics.json").unlink()
    assert (run_amcf(setting, 0) / "metrics.json").read_text() == first  # reused, not retrained
