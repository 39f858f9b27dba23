"""The hub weights a profile uses, fetched by `amcf data fetch --profile paper` into the cache
a compute node without internet reads them from."""

from __future__ import annotations

import shutil
import time
from collections import namedtuple
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants

import amcf.models.hub as hub
from amcf.models import SourceSpec, build_model
from compendium.cli import main
from compendium.hub_weights import ASSET, HubWeights, hub_assets
from scripts.rehearsal.hub import fill_hub_cache

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = "test_resnet.r160_in1k"  # the rehearsal's hub source (a ResNet with a Hub tag)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, online (the download itself is a stand-in below)."""
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**13, 0, 10**12))
    return tmp_path / "hf"


@pytest.fixture
def downloads(cache, monkeypatch):
    """huggingface_hub's download, replaced by the rehearsal's stand-in weights (no network)."""
    calls = []

    def stand_in(repo, filename, revision=None):
        calls.append((repo, filename))
        assert repo == f"timm/{STAND_IN}"
        return str(fill_hub_cache(STAND_IN, cache))

    monkeypatch.setattr(hub, "hf_hub_download", stand_in)
    return calls


def _profile(folder: Path, name: str) -> None:
    folder.mkdir(exist_ok=True)
    shutil.copy(ROOT / "profiles" / f"{name}.yaml", folder / "params.yaml")
    (folder / "profiles").mkdir(exist_ok=True)
    shutil.copy(ROOT / "profiles" / "paper.yaml", folder / "profiles" / "paper.yaml")


def test_the_profile_names_the_hub_weights_it_uses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _profile(tmp_path, "rehearsal")
    assert hub_assets("paper") == {ASSET: (HubWeights(STAND_IN),)}
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")  # still the embedded default:
    assert hub_assets("paper") == {ASSET: (HubWeights("resnet50.tv_in1k"),)}  # the paper's
    assert hub_assets("embedded") == {}


def test_paper_fetch_puts_the_hub_weights_where_an_offline_node_finds_them(
        tmp_path, monkeypatch, downloads, capsys):
    monkeypatch.chdir(tmp_path)
    _profile(tmp_path, "rehearsal")
    assert main(["data", "fetch", "--profile", "paper", "--only", ASSET]) == 0
    assert downloads == [(f"timm/{STAND_IN}", "model.safetensors")]
    assert f"fetched {ASSET}: 1 file(s)" in capsys.readouterr().out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the compute node
    assert hub.locate_hub_weights(STAND_IN).is_file()
    build_model(SourceSpec(name="imagenet", arch=STAND_IN, weights="hub"), num_classes=3)
    assert main(["data", "fetch", "--profile", "paper", "--only", ASSET]) == 0
    assert len(downloads) == 1  # cached: not downloaded again


def test_offline_without_the_weights_fails_fast_naming_the_fetch(tmp_path, monkeypatch, cache,
                                                                 capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(hub.HubWeightsUnavailable,
                       match=r"resnet50.tv_in1k.*not in the local cache.*HF_HUB_OFFLINE is set"
                             r".*run `amcf data fetch --profile paper`"):
        build_model(SourceSpec(name="imagenet", arch="resnet50.tv_in1k", weights="hub"), 10)
    assert time.monotonic() - start < 5
    monkeypatch.chdir(tmp_path)
    _profile(tmp_path, "paper")
    assert main(["data", "fetch", "--profile", "paper", "--only", ASSET]) == 2
    err = capsys.readouterr().err
    assert "cannot fetch the hub weights of resnet50.tv_in1k" in err
    assert "unset HF_HUB_OFFLINE on a machine with network" in err
