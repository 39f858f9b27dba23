"""The rehearsal profile: the paper profile's stages and code paths, only smaller."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from data_support import serve
from safetensors.torch import load_file
from timm.models import get_pretrained_cfg

from compendium.data.commands import prepare_dataset as prepare_info
from compendium.data.errors import DataError
from compendium.data.fetch import FetchContext, fetch_all
from compendium.data.pins import PINS_ENV
from compendium.data.prepared import load_splits
from compendium.data.registry import get_info, names
from compendium.params import load_params
from scripts.rehearsal.hub import fill_hub_cache
from scripts.rehearsal.miniatures import build_site
from scripts.rehearsal.run import hub_arches

ROOT = Path(__file__).resolve().parents[1]
PAPER, REHEARSAL = ROOT / "profiles" / "paper.yaml", ROOT / "profiles" / "rehearsal.yaml"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _stage_list(tmp: Path, profile: Path) -> list[str]:
    tmp.mkdir()
    shutil.copy(ROOT / "dvc.yaml", tmp / "dvc.yaml")
    shutil.copy(profile, tmp / "params.yaml")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    subprocess.run(["dvc", "init", "-q", "--no-scm"], cwd=tmp, check=True, env=env)
    return subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=tmp, env=env,
                          capture_output=True, text=True, check=True).stdout.split()


def test_rehearsal_runs_exactly_the_paper_profiles_stages(tmp_path):
    paper = _stage_list(tmp_path / "paper", PAPER)
    rehearsal = _stage_list(tmp_path / "rehearsal", REHEARSAL)
    assert rehearsal == paper
    assert len(paper) == 39  # 8 prepare, pretrain, 7 x (search, amcf, baselines, ablations)
    assert len(paper) == len(set(paper))


def test_rehearsal_differs_from_the_paper_only_in_sizes():
    paper, rehearsal = load_params(PAPER), load_params(REHEARSAL)
    assert rehearsal.profile == "rehearsal" and rehearsal.data_dir == paper.data_dir
    assert list(rehearsal.datasets) == list(paper.datasets)
    assert [d.raw for d in rehearsal.datasets.values()] == [d.raw for d in paper.datasets.values()]
    assert list(rehearsal.targets) == list(paper.targets)
    for name, source in paper.amcf.sources.items():  # the hub source and the pretrained file
        assert rehearsal.amcf.sources[name].weights == source.weights
    assert {k: (p.dataset, p.init) for k, p in rehearsal.pretrain.items()} == {
        k: (p.dataset, p.init) for k, p in paper.pretrain.items()}
    for arch in hub_arches(yaml.safe_load(REHEARSAL.read_text())):  # timm's Hub path, as
        assert get_pretrained_cfg(arch).hf_hub_id  # resnet50.tv_in1k's
    assert rehearsal.baselines.methods == paper.baselines.methods
    assert rehearsal.ablations.methods == paper.ablations.methods
    assert rehearsal.ablations.lams == paper.ablations.lams
    assert rehearsal.search.pso.particles * (rehearsal.search.pso.iterations + 1) == 4


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("rehearsal")
    build_site(root / "site", root / "pins.lock")
    return root


@pytest.mark.parametrize("name", names("paper"))
def test_miniatures_go_through_the_paper_datasets_own_code(name, site, tmp_path, monkeypatch):
    monkeypatch.setenv(PINS_ENV, str(site / "pins.lock"))
    info = get_info(name)
    with serve(site / "site") as url:
        fetch_all(info.files, FetchContext(tmp_path / "downloads", base_url=url))
    prepare_info(info, tmp_path / "downloads", tmp_path / "out", image_size=64)
    splits = load_splits(name, tmp_path / "out")
    assert min(len(splits.train), len(splits.val), len(splits.test)) > 0
    x, y = splits.train[0]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert len(set(splits.train.labels.tolist())) >= 3


def test_a_served_file_that_differs_from_its_pin_is_refused(site, tmp_path, monkeypatch):
    monkeypatch.setenv(PINS_ENV, str(site / "pins.lock"))
    served = tmp_path / "served"
    shutil.copytree(site / "site", served)
    lists = served / "mit-indoor67" / "TestImages.txt"
    lists.write_text(lists.read_text() + "bakery/extra.jpg\n")
    with serve(served) as url, pytest.raises(DataError, match="checksum mismatch"):
        fetch_all(get_info("mit-indoor67").files,
                  FetchContext(tmp_path / "downloads", base_url=url))


def test_stand_in_weights_load_through_timms_pretrained_path(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from amcf.models import SourceSpec, build_model
    from amcf.models.hub import locate_hub_weights

    arch = "test_resnet.r160_in1k"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    stored = fill_hub_cache(arch, tmp_path / "hf")
    assert locate_hub_weights(arch) == stored
    model = build_model(SourceSpec(name="imagenet", arch=arch, weights="hub"), num_classes=5)
    weights = load_file(stored)
    body = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    assert body and all(torch.equal(v, weights[k]) for k, v in body.items())
    assert model.get_classifier().out_features == 5


def test_the_copy_is_the_working_tree_as_a_fresh_clone(tmp_path, monkeypatch):
    """The rehearsal's copy holds the working tree and no data/, as a new user's clone:
    `amcf cluster-run` there leaves data.dvc, which no stage of the profile needs, as `dvc
    repro` would (found by the first real run: it died committing data.dvc)."""
    from compendium.pipeline.cluster import plan
    from scripts.rehearsal.run import copy_checkout

    src = tmp_path / "src"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    (src / "profiles").mkdir(parents=True)
    shutil.copy(REHEARSAL, src / "profiles" / "rehearsal.yaml")
    (src / "data").mkdir()
    (src / "data" / "raw.txt").write_text("pinned bytes\n")
    (src / "new-file.txt").write_text("not committed yet\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "add", "-q", "data"],
                ["git", "add", "-A"]):
        subprocess.run(cmd, cwd=src, check=True, env=env)
    dest = tmp_path / "copy"
    old_path = os.environ["PATH"]
    os.environ["PATH"] = env["PATH"]
    try:
        copy_checkout(src, dest)
    finally:
        os.environ["PATH"] = old_path
    assert (dest / "new-file.txt").read_text() == "not committed yet\n"
    assert (dest / "params.yaml").read_text() == REHEARSAL.read_text()
    assert (dest / "data.dvc").is_file() and not (dest / "data").exists()
    monkeypatch.chdir(dest)  # as `amcf cluster-run` runs
    stage_plan = plan(".")
    assert stage_plan.absent == ["data.dvc"] and not stage_plan.sources + stage_plan.order
