"""A profile that requires CUDA stops in seconds where CUDA does not work, and says why; the
device a run trained on is part of what identifies it.

The three machines a user meets are simulated by replacing the probes of
:mod:`amcf.train.cuda`: no NVIDIA GPU at all, a GPU whose driver is too old for the CUDA the
installed torch wheel was built for, and CUDA working.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest
import torch
import yaml

from amcf.objective import MCLoss
from amcf.train import cuda
from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from amcf.train.state import identity_mismatch, run_identity
from compendium import params as params_module
from compendium.pipeline import cluster
from compendium.stages import runs
from compendium.stages.ablations import ablations_stage
from compendium.stages.amcf import amcf_stage
from compendium.stages.baselines import baselines_stage
from compendium.stages.pretrain import pretrain_stage
from compendium.stages.search import search_dirs, search_stage

ROOT = Path(__file__).resolve().parents[1]
PAPER, REHEARSAL = ROOT / "profiles" / "paper.yaml", ROOT / "profiles" / "rehearsal.yaml"
TORCH = torch.__version__.split("+")[0]
VISION = metadata.version("torchvision").split("+")[0]
FAST = dict(epochs=1, batch_size=64, lr=0.05, progress=False)


def _machine(monkeypatch, *, sees: bool, driver: str | None, built: str | None = "13.0",
             warned: str = "") -> None:
    monkeypatch.setattr(cuda, "torch_sees_cuda", lambda: (sees, warned))
    monkeypatch.setattr(cuda, "driver_version", lambda: driver)
    monkeypatch.setattr(cuda, "wheel_cuda", lambda: built)


@pytest.fixture
def no_gpu(monkeypatch):
    _machine(monkeypatch, sees=False, driver=None)


@pytest.fixture
def old_driver(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    _machine(monkeypatch, sees=False, driver="550.54.15",
             warned="The NVIDIA driver on your system is too old (found version 12040).")


@pytest.fixture
def cuda_works(monkeypatch):
    _machine(monkeypatch, sees=True, driver="580.65.06")


# ---- what the message says, per machine ----------------------------------------------------

def test_no_gpu_says_so_and_names_the_driver_the_wheel_needs(no_gpu):
    problem = cuda.cuda_problem()
    assert "no NVIDIA GPU" in problem and "CUDA 13.0" in problem and ">= 580" in problem
    with pytest.raises(cuda.CudaUnavailable, match="pretrain@x requires CUDA, but no NVIDIA"):
        cuda.require_cuda("pretrain@x")


def test_an_old_driver_gets_the_command_for_a_wheel_that_runs_on_it(old_driver):
    problem = cuda.cuda_problem()
    assert "550.54.15 is too old" in problem and "CUDA 13.0" in problem
    assert ">= 580" in problem and "too old (found version 12040)" in problem
    assert (f"pip install torch=={TORCH} torchvision=={VISION} "
            "--index-url https://download.pytorch.org/whl/cu126") in problem


def test_a_driver_older_than_any_build_needs_an_update(monkeypatch):
    _machine(monkeypatch, sees=False, driver="470.223.02")
    problem = cuda.cuda_problem()
    assert "470.223.02 is too old" in problem and "update the driver" in problem
    assert "--index-url" not in problem  # no wheel of this torch runs on it


def test_the_driver_needs_follow_the_wheels_cuda_version(monkeypatch):
    _machine(monkeypatch, sees=False, driver="550.54.15", built="12.6")
    problem = cuda.cuda_problem()  # a CUDA 12 wheel runs on 550: something else is wrong
    assert "is too old" not in problem and ">= 525" in problem
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "CUDA_VISIBLE_DEVICES='' hides every GPU" in cuda.cuda_problem()


def test_a_cpu_only_torch_is_named_as_such(monkeypatch):
    _machine(monkeypatch, sees=False, driver="580.65.06", built=None)
    problem = cuda.cuda_problem()
    assert "CPU-only build" in problem and "--index-url https://download.pytorch.org/whl/cu130" in (
        problem)


def test_working_cuda_passes(cuda_works):
    assert cuda.cuda_problem() is None
    cuda.require_cuda("anything")  # no error


def test_the_driver_version_is_read_from_the_kernel_module(tmp_path, monkeypatch):
    version = tmp_path / "version"
    version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 "
                       "22:23:56 UTC 2024\nGCC version:  gcc version 12.3.0\n")
    monkeypatch.setattr(cuda, "DRIVER_FILE", version)
    assert cuda.driver_version() == "550.54.15"
    open_kernel = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release"
    version.write_text(open_kernel)
    assert cuda.driver_version() == "580.65.06"


# ---- who checks: params check, every training stage, fit, cluster-run ----------------------

def test_the_paper_profile_requires_cuda_and_its_rehearsal_does_not():
    assert params_module.load_params(PAPER).requires_cuda
    assert not params_module.load_params(REHEARSAL).requires_cuda
    assert not params_module.load_params(ROOT / "params.yaml").requires_cuda
    paper = params_module.load_params(PAPER)
    assert {r.device for r in paper.recipes().values()} == {"cuda"}
    tree = yaml.safe_load(PAPER.read_text())
    assert set(params_module.recipe_devices(tree).values()) == {"cuda"}


def test_params_check_stops_without_cuda_and_passes_with_it(no_gpu, capsys, monkeypatch):
    assert params_module.check([str(PAPER)]) == 2
    err = capsys.readouterr().err
    assert "requires CUDA, but no NVIDIA GPU" in err and ">= 580" in err
    assert params_module.check([str(PAPER)], device=False) == 0  # --no-device: schema only
    _machine(monkeypatch, sees=True, driver="580.65.06")
    assert params_module.check([str(PAPER)]) == 0
    assert "CUDA: ok" in capsys.readouterr().out


def test_cpu_profiles_never_probe_for_a_gpu(monkeypatch):
    def probe():
        raise AssertionError("a CPU profile probed CUDA")

    monkeypatch.setattr(cuda, "torch_sees_cuda", probe)
    assert params_module.check([str(ROOT / "params.yaml"), str(REHEARSAL)]) == 0


def test_one_named_gpu_is_refused_in_a_profile(tmp_path):
    tree = yaml.safe_load(PAPER.read_text())
    tree["final"]["train"]["device"] = "cuda:1"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    with pytest.raises(params_module.ParamsError, match="final.train.device: 'cuda:1'"):
        params_module.load_params(path)


CUDA_TRAIN = {"epochs": 1, "device": "cuda"}
NOWHERE = "no-such-prepared-dir"


def _stage_calls(tmp_path):
    common = dict(prepared_dir=tmp_path / NOWHERE, results_dir=tmp_path / "r",
                  work_dir=tmp_path / "w")
    sources = {"a": {"arch": "amcf_resnet_tiny", "weights": None}}
    return {
        "pretrain": lambda: pretrain_stage("a", "digits", "amcf_resnet_tiny", None, CUDA_TRAIN,
                                           tmp_path / NOWHERE, tmp_path / "a.pt",
                                           tmp_path / "r", tmp_path / "w"),
        "search": lambda: search_stage("digits", sources, 0.2, False, {}, CUDA_TRAIN, [0], [],
                                       tmp_path / NOWHERE, tmp_path / "out", tmp_path / "w"),
        "amcf": lambda: amcf_stage("digits", [0], sources, 0.2, False, CUDA_TRAIN, None,
                                   tmp_path / "searches", **common),
        "baselines": lambda: baselines_stage("digits", ["finetune"], [0], None, sources, 0.2,
                                             False, CUDA_TRAIN, {}, {}, [0], CUDA_TRAIN,
                                             tmp_path / "searches", **common),
        "ablations": lambda: ablations_stage("digits", ["amcf-lam"], [0], None, sources, 0.2,
                                             False, CUDA_TRAIN, [0.0], {},
                                             tmp_path / "searches", **common),
    }


@pytest.mark.parametrize("stage", ["pretrain", "search", "amcf", "baselines", "ablations"])
def test_every_training_stage_stops_before_reading_data(stage, old_driver, tmp_path,
                                                        monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    call = _stage_calls(tmp_path)[stage]
    with pytest.raises(cuda.CudaUnavailable, match=rf"{stage}@\w+ \(its recipe's device: cuda"
                       r"\) requires CUDA, but the NVIDIA driver 550\.54\.15 is too old"):
        call()
    assert not (tmp_path / "w").exists() and not (tmp_path / "r").exists()


@pytest.mark.parametrize("stage", ["search", "amcf", "baselines", "ablations"])
def test_a_stage_whose_trainings_go_to_ray_leaves_the_check_to_their_nodes(stage, no_gpu,
                                                                            tmp_path,
                                                                            monkeypatch):
    # this process may hold no GPU (Ray gives a fanned-out stage none): it goes on to its
    # data (missing here), and each training checks CUDA on the node Ray runs it on
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    with pytest.raises(Exception) as err:
        _stage_calls(tmp_path)[stage]()
    assert not isinstance(err.value, cuda.CudaUnavailable)


def test_fit_asked_for_cuda_names_the_driver_problem(old_driver, digits, make_cnn):
    with pytest.raises(cuda.CudaUnavailable, match="CUDA is not available on this machine: "
                       "the NVIDIA driver 550.54.15 is too old"):
        fit([make_cnn()], digits, TrainConfig(**FAST, device="cuda"))


def _paper_params(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(PAPER.read_text())


def test_cluster_run_stops_before_any_stage_without_cuda(no_gpu, tmp_path, monkeypatch, capsys):
    pytest.importorskip("ray")
    _paper_params(tmp_path)
    monkeypatch.chdir(tmp_path)

    def never(*_args, **_kwargs):
        raise AssertionError("cluster-run planned stages on a machine that cannot train them")

    monkeypatch.setattr(cluster, "plan", never)
    assert cluster.main([]) == 2
    err = capsys.readouterr().err
    assert "amcf cluster-run" in err and "no NVIDIA GPU" in err
    assert "final.train" in err  # names the recipes that ask for CUDA
    # on a Ray cluster the trainings run on its nodes, which check for themselves
    problem = params_module.launch_problem(tmp_path / "params.yaml", remote=True)
    assert problem is None


def test_cluster_run_goes_on_where_cuda_works_or_is_not_required(tmp_path, monkeypatch):
    _paper_params(tmp_path)
    _machine(monkeypatch, sees=True, driver="580.65.06")
    assert params_module.launch_problem(tmp_path / "params.yaml") is None
    (tmp_path / "params.yaml").write_text(REHEARSAL.read_text())
    _machine(monkeypatch, sees=False, driver=None)
    assert params_module.launch_problem(tmp_path / "params.yaml") is None
    assert params_module.launch_problem(tmp_path / "absent.yaml") is None


# ---- the device in a run's identity and metrics ----------------------------------------------

def test_the_cpu_leaves_the_identity_as_it_was(make_cnn):
    models, objective = [make_cnn()], MCLoss()
    config = TrainConfig(**FAST).identity()
    plain = run_identity(config, models, objective, "cpu")
    assert "device" not in plain  # runs made before the device was recorded are found again
    on_gpu = run_identity(config, models, objective, torch.device("cuda", 1))
    assert on_gpu["device"] == "cuda"  # the type: which card is the scheduler's choice
    assert identity_mismatch(plain, on_gpu) == [
        "device: stored 'cpu', now 'cuda' (a run is reused only on the kind of device it "
        "trained on)"]
    assert identity_mismatch(on_gpu, plain) != [] and identity_mismatch(plain, plain) == []


def test_a_run_trained_elsewhere_is_refused_not_reused(digits, make_cnn, tmp_path):
    config = TrainConfig(**FAST)  # device auto: the CPU here
    first = fit([make_cnn()], digits, config, out_dir=tmp_path)
    assert first.metrics["device"] == "cpu"
    assert json.loads((tmp_path / "metrics.json").read_text())["device"] == "cpu"
    # the same folder, as a CUDA run would have left it
    stored = json.loads((tmp_path / "metrics.json").read_text())
    stored["identity"]["device"] = "cuda"
    (tmp_path / "metrics.json").write_text(json.dumps(stored))
    with pytest.raises(RuntimeError, match="device: stored 'cuda', now 'cpu'"):
        fit([make_cnn()], digits, config, out_dir=tmp_path)


def test_work_dirs_and_search_memos_are_apart_per_device(digits, make_cnn, sources, tmp_path,
                                                          monkeypatch):
    config = TrainConfig(**FAST)
    models, objective = [make_cnn()], MCLoss()
    on_cpu = runs.work_dir(tmp_path, "amcf", 0, config, digits, models, objective)
    cpu_state, cpu_runs = search_dirs(digits, sources, {}, config, 0.2, tmp_path, False)
    assert runs.device_key(config) == []
    # the same recipe where device auto finds a GPU
    monkeypatch.setattr(runs, "resolve_device", lambda name: torch.device("cuda"))
    assert runs.device_key(config) == [{"device": "cuda"}]
    assert runs.work_dir(tmp_path, "amcf", 0, config, digits, models, objective) != on_cpu
    gpu_state, gpu_runs = search_dirs(digits, sources, {}, config, 0.2, tmp_path, False)
    assert gpu_state != cpu_state and gpu_runs != cpu_runs


def test_a_fitness_memo_records_the_device(digits, make_cnn, monkeypatch):
    from amcf import amls

    fitness = amls.make_fitness(["a"], digits, TrainConfig(**FAST),
                                build=lambda j: make_cnn())
    assert "device" not in fitness.identity()
    monkeypatch.setattr(amls, "resolve_device", lambda name: torch.device("cuda"))
    assert fitness.identity()["device"] == "cuda"
