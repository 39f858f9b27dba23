"""The GPU check (``make gpu-check``): every part at toy size on the CPU (its numbers need a
GPU), and the arithmetic that turns its rates into the paper profile's GPU-hours."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from benchmarks.campaign import Training, campaign_hours, training_seconds, trainings
from compendium.params import load_params

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(tmp_path: Path) -> list[str]:
    return ["--out", str(tmp_path / "gpu.json"), "--markdown", str(tmp_path / "gpu.md")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_cuda_it_stops_at_once_with_the_reason(tmp_path, capsys):
    assert _script().main(_outputs(tmp_path)) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_tiny_cpu_run_measures_every_part_and_projects_the_campaign(tmp_path):
    assert _script().main(["--device", "cpu", "--tiny", *_outputs(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["measured"] and report["data"]["images"] == 32
    t = report["training"]
    assert t["workers"] == 1 and t["batch_size"] == 4 and t["eval_batch_size"] == 256
    assert t["train_images"] == 16 and t["eval_images"] == 16  # val and test, one epoch
    assert t["train_images_per_s"] > 0 and t["eval_images_per_s"] > 0
    assert report["checkpoint"]["bytes"] > 0 and report["checkpoint"]["models"] == 2
    two = report["two_at_once"]
    assert "error" not in two, two
    assert len(two["train_images_per_s_each"]) == 2
    rates = report["rates"]
    assert rates["train"] == 2 * t["train_images_per_s"]
    assert rates["two_at_once"] == pytest.approx(
        two["train_images_per_s_combined"] / t["train_images_per_s"])
    hours = report["campaign"]
    assert set(hours["targets"]) == set(load_params(ROOT / "profiles/paper.yaml").targets)
    assert all(h["total"] > 0 for h in hours["targets"].values())
    page = (tmp_path / "gpu.md").read_text()
    assert "No GPU has run" not in page and "two trainings at once" in page


def test_the_paper_profiles_trainings_are_counted():
    runs = {(r.stage, r.what): r for r in trainings(load_params(ROOT / "profiles/paper.yaml"))}
    search = runs["search", "fitness calls (AMLS)"]
    assert (search.count, search.models, search.epochs, search.test_passes) == (60, 2, 5, 0)
    assert search.checkpoints == 0  # fitness calls write none
    amcf = runs["amcf", "AMCF (and amcf-select)"]
    # three seeds of 110 epochs; a checkpoint every 10 epochs but the last (not kept)
    assert (amcf.count, amcf.models, amcf.epochs, amcf.checkpoints) == (3, 2, 110, 10)
    assert amcf.test_passes == 110  # every epoch: the best-over-epochs column
    # test_eval: selected, the last epoch, the fused selection and each member's
    assert runs["baselines", "finetune"].test_passes == 2 + 2
    assert runs["ablations", "amcf-k1"].test_passes == 2 + 1
    assert runs["baselines", "finetune"].models == 2  # the K sources in one run
    assert runs["baselines", "l2sp"].count == 3 + 1  # its 2-point grid: one extra run
    assert runs["baselines", "als search"].count == 60
    assert runs["ablations", "amcf-lam"].count == 2 * 3  # two lams on every seed
    assert (runs["ablations", "amcf-k1"].count, runs["ablations", "amcf-k1"].models) == (4, 1)


def test_the_arithmetic_of_gpu_hours():
    run = Training("amcf", "x", count=2, models=2, epochs=3, test_passes=3, checkpoints=1)
    sizes = {"train": 100, "val": 10, "test": 20}
    rates = {"train": 50.0, "eval": 100.0, "setup_s": 1.0, "checkpoint_s": 0.5}
    # per epoch 2 models x (100/50 + 30/100) s; 3 epochs, the set-up, one checkpoint of two
    assert training_seconds(run, sizes, rates) == pytest.approx(2 * (3 * 4.6 + 1 + 1.0))
    # two test passes instead of three: one pass of 2 models x 20 images less
    fewer = Training("amcf", "x", count=2, models=2, epochs=3, test_passes=2, checkpoints=1)
    assert training_seconds(run, sizes, rates) - training_seconds(fewer, sizes, rates) == (
        pytest.approx(2 * 2 * 20 / 100))
    fitness = Training("search", "y", count=1, models=1, epochs=1, test_passes=0, checkpoints=0)
    assert training_seconds(fitness, sizes, rates) == pytest.approx(100 / 50 + 10 / 100 + 1)

    params = load_params(ROOT / "profiles/paper.yaml")
    one = campaign_hours(params, {**rates, "two_at_once": 1.0})
    two = campaign_hours(params, {**rates, "two_at_once": 2.0})
    assert one["total"] == two["total"] and two["total_two_per_gpu"] == pytest.approx(
        one["total"] / 2, abs=0.1)
    dogs = one["targets"]["stanford-dogs"]
    assert dogs["total"] == pytest.approx(sum(dogs[s] for s in (
        "search", "amcf", "baselines", "ablations")), abs=0.02)
    faster = campaign_hours(params, {**rates, "train": 100.0, "eval": 200.0, "two_at_once": 1})
    assert faster["targets"]["stanford-dogs"]["total"] < dogs["total"]


def test_the_committed_page_renders_the_committed_report(tmp_path):
    committed = json.loads((ROOT / "benchmarks" / "gpu-check.json").read_text())
    assert (ROOT / "docs" / "gpu-check.md").read_text() == _script().render(committed)
    if not committed["measured"]:  # until a GPU runs it, it says so
        assert "No GPU has run `make gpu-check` yet" in (ROOT / "docs/gpu-check.md").read_text()
        assert _script().main(["--assumed", *_outputs(tmp_path)]) == 0
        assert json.loads((tmp_path / "gpu.json").read_text()) == committed
