"""The GPU check's logic, at tiny sizes on the CPU (its numbers need a GPU)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_cuda_it_stops_at_once_with_the_reason(tmp_path, capsys):
    assert _script().main(["--out", str(tmp_path / "x.json")]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_tiny_cpu_run_writes_every_figure(tmp_path):
    out = tmp_path / "gpu.json"
    code = _script().main([
        "--device", "cpu", "--arch", "resnet18", "--image-size", "32", "--resize", "40",
        "--photo-size", "48", "44", "--batch-size", "4", "--train-images", "8",
        "--eval-images", "4", "--classes", "2", "--epochs", "1", "--steps", "2",
        "--workers", "0", "--out", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    tr = report["training"]
    assert tr["first_batch_loss"]["reference"] == pytest.approx(tr["first_batch_loss"]["amcf"],
                                                                rel=1e-4)
    assert tr["steps"] == 2 and report["train_ratio"] > 0
    files = report["files"]
    assert files["images"] == 4 * 6 and report["gpu_busy_share"] > 0
    assert files["decode_images_per_s_stored_256_persistent"] > 0
