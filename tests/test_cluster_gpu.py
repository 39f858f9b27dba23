"""GPU trainings under Ray, on a CPU: a local Ray told it has 2 GPUs it does not have assigns
them as it would real ones (``CUDA_VISIBLE_DEVICES``), so the binding of each training to its
GPU, its fresh process and its CPU request are checked here."""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from cluster_support import BIN, clean, toy_repo

ray = pytest.importorskip("ray")

from amcf.train.config import TrainConfig  # noqa: E402
from compendium.pipeline import cluster, fanout  # noqa: E402

CPUS, GPUS = 4, 2  # two CPUs a GPU: a GPU training asks for its loop and one loader worker


@pytest.fixture(scope="module")
def gpu_ray():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=CPUS, num_gpus=GPUS, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _probe(seconds: float) -> dict:
    """What a training in a Ray task sees: its process, GPU, CPUs and loader workers."""
    import torch

    began = time.time()
    time.sleep(seconds)
    return {"pid": os.getpid(), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "cpus": os.environ.get("AMCF_CPUS"), "threads": torch.get_num_threads(),
            "workers": TrainConfig(num_workers="auto").workers(), "began": began,
            "ended": time.time()}


def test_gpu_trainings_run_in_fresh_processes_each_bound_to_its_gpu(gpu_ray):
    first, second = fanout.run_all([partial(_probe, 3.0), partial(_probe, 3.0)])
    [third] = fanout.run_all([partial(_probe, 0.0)])

    assert max(first["began"], second["began"]) < min(first["ended"], second["ended"])  # at once
    assert first["pid"] != second["pid"]
    assert {first["gpu"], second["gpu"]} == {"0", "1"}  # each sees only the GPU Ray gave it
    assert third["pid"] not in {first["pid"], second["pid"]}  # no CUDA context carried over
    assert third["gpu"] in {"0", "1"}
    for seen in (first, second, third):
        # it asked for 1 + its workers, and `num_workers: auto` starts exactly those
        assert seen["cpus"] == str(fanout.gpu_task_cpus(ray.nodes())) == "2"
        assert seen["workers"] == 1 and seen["threads"] == 1


def test_gpu_stages_run_in_fresh_processes_each_bound_to_its_gpu(tmp_path, gpu_ray,
                                                                 monkeypatch):
    toy_repo(tmp_path, keys="abc", record="$CUDA_VISIBLE_DEVICES $AMCF_CPUS $PPID")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")

    outcome = cluster.execute(cluster.plan("."), log_dir=Path("logs"), task_cpus=1)

    assert not outcome.failed and outcome.done[-1] == "join" and clean(tmp_path)
    seen = {k: (tmp_path / f"out/{k}.env").read_text().split() for k in "abc"}
    assert {gpu for gpu, _, _ in seen.values()} == {"0", "1"}
    assert {cpus for _, cpus, _ in seen.values()} == {"2"}
    assert len({worker for _, _, worker in seen.values()}) == 3  # a fresh Ray worker each
