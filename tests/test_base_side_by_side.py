"""benchmarks/base_side_by_side.py: the base commit's params.yaml carries today's work."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from benchmarks import base_side_by_side as module

ROOT = Path(__file__).resolve().parents[1]


def _base_params(commit: str) -> dict:
    if shutil.which("git") is None:
        pytest.skip("no git")
    proc = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:params.yaml"],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        pytest.skip(f"this clone lacks {commit}")
    return yaml.safe_load(proc.stdout)


def test_the_base_gets_todays_recipes_targets_and_one_stage_per_source_draw():
    today = yaml.safe_load((ROOT / "params.yaml").read_text())
    params = module.base_params(_base_params(module.BASE), today)
    assert params["final"] == today["final"]
    assert params["search"]["fitness"] == today["search"]["fitness"]
    assert params["search"]["pso"] == today["search"]["pso"]
    assert list(params["targets"]) == list(today["targets"])
    for target in today["targets"]:
        folder = params["datasets"][target]["folder"]
        assert folder["path"] == params["datasets"][target]["raw"] == f"data/today/{target}"
    draws = sum(e.get("draws", 1) for e in today["pretrain"].values())
    assert len(params["pretrain"]) == draws
    for name, entry in today["pretrain"].items():
        seeds = [params["pretrain"][name if d == 0 else f"{name}-d{d}"]["train"]["seed"]
                 for d in range(entry.get("draws", 1))]
        assert seeds == [entry["train"]["seed"] + d for d in range(entry.get("draws", 1))]
        assert "draws" not in params["pretrain"][name]
    # the base evaluates the test split every epoch: it knows no test_eval
    assert "test_eval" not in params["baselines"] and "test_eval" not in params["ablations"]
    assert params["baselines"]["methods"] == today["baselines"]["methods"]
    assert params["ablations"]["methods"] == today["ablations"]["methods"]
