"""The paper-profile runner and the notebook parameter bridge, on toy DVC repositories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from amcf.pipeline import gpu
from amcf.pipeline.notebook import NotebookParameterError, parse_flags

BIN = Path(sys.executable).parent


def _toy_repo(root: Path) -> None:
    """Two independent 'pretrain' stages that each take ~1 s, and one stage needing both."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True, env=env)
    (root / "params.yaml").write_text("pre:\n  a: {n: 1}\n  b: {n: 2}\n")
    (root / "dvc.yaml").write_text(
        "stages:\n"
        "  pretrain:\n"
        "    foreach: ${pre}\n"
        "    do:\n"
        "      cmd: mkdir -p out && date +%s.%N > out/${key}.start && sleep 1 && "
        "echo $CUDA_VISIBLE_DEVICES > out/${key}.gpu && date +%s.%N > out/${key}.end\n"
        "      outs:\n"
        "        - out/${key}.start\n"
        "        - out/${key}.gpu\n"
        "        - out/${key}.end\n"
        "  join:\n"
        "    cmd: cat out/a.gpu out/b.gpu > joined.txt\n"
        "    deps:\n"
        "      - out\n"
        "    outs:\n"
        "      - joined.txt\n"
    )


@pytest.fixture
def toy(tmp_path, monkeypatch):
    _toy_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    return tmp_path


def test_runner_runs_independent_stages_concurrently_and_commits(toy):
    stage_plan = gpu.plan(".")
    assert stage_plan.order[-1] == "join"
    assert stage_plan.waits_for["join"] == {"pretrain@a", "pretrain@b"}

    done = gpu.run(stage_plan, ["0", "1"], log_dir=toy / "logs")

    assert done[-1] == "join"
    gpus = {(toy / f"out/{k}.gpu").read_text().strip() for k in "ab"}
    assert gpus == {"0", "1"}  # each stage saw its own GPU
    start = {k: float((toy / f"out/{k}.start").read_text()) for k in "ab"}
    end = {k: float((toy / f"out/{k}.end").read_text()) for k in "ab"}
    assert max(start.values()) < min(end.values())  # the two stages overlapped in time
    status = subprocess.run(["dvc", "status", "-q"], cwd=toy)
    assert status.returncode == 0  # committed: DVC sees the pipeline as up to date
    assert gpu.plan(".").order == []


def test_runner_with_one_gpu_runs_stages_one_after_another(toy):
    gpu.run(gpu.plan(".", ["pretrain"]), ["3"], log_dir=toy / "logs")
    start = {k: float((toy / f"out/{k}.start").read_text()) for k in "ab"}
    end = {k: float((toy / f"out/{k}.end").read_text()) for k in "ab"}
    first, second = sorted("ab", key=start.get)
    assert end[first] <= start[second]
    assert not (toy / "joined.txt").exists()  # not asked for


def test_runner_reports_a_failing_stage(toy):
    text = (toy / "dvc.yaml").read_text().replace("cat out/a.gpu", "false && cat out/a.gpu")
    (toy / "dvc.yaml").write_text(text)
    with pytest.raises(RuntimeError, match="stage join failed"):
        gpu.run(gpu.plan("."), ["0", "1"], log_dir=toy / "logs")


def test_unknown_stage_name_is_refused(toy):
    with pytest.raises(SystemExit, match="no stage named 'serch'"):
        gpu.plan(".", ["serch"])


DEFAULTS = {
    "target": "digits",
    "seeds": [0],
    "pso": {"particles": 10},
    "sources": {"mnist": {"arch": "x"}},
    "epochs": 5,
    "lam": 0.2,
    "freeze_bn_stats": False,
    "weights": None,
}


def test_flags_are_typed_by_the_notebooks_defaults():
    argv = ("--target omniglot-small --seeds 3 --pso.particles 4 --pso.w_start 1.4 "
            "--sources.mnist.arch amcf_resnet_tiny --sources.mnist.weights build/m.pt "
            "--epochs 7 --lam 0.0005 --freeze_bn_stats --weights None").split()
    params = parse_flags(argv, DEFAULTS)
    assert params == {
        "target": "omniglot-small",
        "seeds": [3],  # one value, but the default is a list
        "pso": {"particles": 4, "w_start": 1.4},
        "sources": {"mnist": {"arch": "amcf_resnet_tiny", "weights": "build/m.pt"}},
        "epochs": 7,
        "lam": 0.0005,
        "freeze_bn_stats": True,
        "weights": None,
    }
    assert parse_flags(["--no-freeze_bn_stats"], DEFAULTS) == {"freeze_bn_stats": False}
    assert parse_flags(["--seeds", "0", "1", "2"], DEFAULTS) == {"seeds": [0, 1, 2]}


def test_an_undeclared_flag_names_the_known_parameters():
    with pytest.raises(NotebookParameterError, match="--epoch is not a parameter.*epochs"):
        parse_flags(["--epoch", "3"], DEFAULTS)


