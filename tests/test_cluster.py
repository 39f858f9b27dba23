"""Ray as the execution engine: stages on a toy DVC repository, fan-out, a killed worker."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from amcf.search.pso import pso_sync  # noqa: E402
from amcf.train.config import TrainConfig  # noqa: E402
from compendium.pipeline import cluster, fanout  # noqa: E402
from compendium.stages.ablations import run_ablations  # noqa: E402
from compendium.stages.runs import Setting, run_amcf_variant  # noqa: E402
from scripts.same_results import differences  # noqa: E402

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs for this module (tasks pickle this module's functions)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


# ---- stages --------------------------------------------------------------------------------

def _toy_repo(root: Path) -> None:
    """Two independent 'pretrain' stages that each take ~3 s, and one stage needing both."""
    env = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True, env=env)
    (root / "params.yaml").write_text("pre:\n  a: {n: 1}\n  b: {n: 2}\n")
    (root / "dvc.yaml").write_text(
        "stages:\n"
        "  pretrain:\n"
        "    foreach: ${pre}\n"
        "    do:\n"
        "      cmd: mkdir -p out && date +%s.%N > out/${key}.start && sleep 3 && "
        "echo $OMP_NUM_THREADS $RAY_ADDRESS > out/${key}.env && date +%s.%N > out/${key}.end\n"
        "      outs:\n"
        "        - out/${key}.start\n"
        "        - out/${key}.env\n"
        "        - out/${key}.end\n"
        "  join:\n"
        "    cmd: cat out/a.env out/b.env > joined.txt\n"
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


def _clean(root: Path, *stages: str) -> bool:
    return subprocess.run(["dvc", "status", "-q", *stages], cwd=root).returncode == 0


def test_stages_run_as_ray_tasks_in_graph_order_and_are_committed(toy, local_ray):
    stage_plan = cluster.plan(".")
    assert stage_plan.order[-1] == "join"
    assert stage_plan.waits_for["join"] == {"pretrain@a", "pretrain@b"}

    outcome = cluster.execute(stage_plan, log_dir=Path("logs"), task_cpus=1)

    assert outcome.done[-1] == "join" and not outcome.failed
    start = {k: float((toy / f"out/{k}.start").read_text()) for k in "ab"}
    end = {k: float((toy / f"out/{k}.end").read_text()) for k in "ab"}
    assert max(start.values()) < min(end.values())  # one CPU each: both ran at once
    threads, address = (toy / "out/a.env").read_text().split()
    assert threads == "1"  # the stage's threads are the CPUs Ray gave it
    assert address == ray.get_runtime_context().gcs_address  # its trainings may fan out
    assert (toy / "logs/pretrain--a.log").read_text().startswith("$ mkdir -p out")
    assert _clean(toy)  # committed: DVC sees the pipeline as up to date
    assert cluster.plan(".").order == []


def test_a_failed_stage_is_reported_and_the_others_are_committed(toy, local_ray, capsys):
    text = (toy / "dvc.yaml").read_text().replace(
        "mkdir -p out &&", "mkdir -p out && test ${key} != a || { echo no luck for a; exit 3; } &&")
    (toy / "dvc.yaml").write_text(text)

    outcome = cluster.execute(cluster.plan("."), log_dir=Path("logs"), task_cpus=1)

    assert list(outcome.failed) == ["pretrain@a"]
    assert outcome.done == ["pretrain@b"] and outcome.skipped == ["join"]
    assert "no luck for a" in capsys.readouterr().out  # the log's tail is printed
    assert _clean(toy, "pretrain@b") and not _clean(toy, "pretrain@a")


def test_stage_selection_by_group_and_pattern(toy):
    assert sorted(cluster.plan(".", ["pretrain"]).order) == ["pretrain@a", "pretrain@b"]
    assert cluster.plan(".", ["pretrain@?"]).order == cluster.plan(".", ["pretrain"]).order
    assert set(cluster.plan(".", ["join"]).order) == {"pretrain@a", "pretrain@b", "join"}
    with pytest.raises(SystemExit, match="no stage named 'serch'"):
        cluster.plan(".", ["serch"])


def test_resources_by_stage_kind():
    assert cluster.resources("pretrain@mnist", has_gpus=True, task_cpus=4) == {
        "num_gpus": 1, "num_cpus": 1}
    assert cluster.resources("pretrain@mnist", has_gpus=False, task_cpus=4) == {"num_cpus": 4}
    # a fan-out stage holds nothing while its trainings, Ray tasks of their own, wait for CPUs
    # (amcf@ runs every seed as a task: holding CPUs itself deadlocked a 2-CPU Ray; search@
    # runs every search seed as a task)
    for stage in ("search@digits", "amcf@digits", "baselines@digits", "ablations@digits"):
        assert cluster.resources(stage, has_gpus=True, task_cpus=4) == {"num_cpus": 0}
    assert cluster.resources("report", has_gpus=True, task_cpus=2) == {"num_cpus": 2}


# ---- fan-out inside a stage ----------------------------------------------------------------

def _setting(digits, sources, root: Path, epochs: int) -> Setting:
    return Setting(splits=digits, sources=sources, scheme=(3, 0),
                   train=TrainConfig(epochs=epochs, batch_size=64, lr=0.05, progress=False),
                   results_dir=root / "results", work_dir=root / "work", group="ablations")


def test_ablations_fanned_out_on_ray_equal_the_sequential_run(digits, sources, tmp_path,
                                                              local_ray, monkeypatch):
    run = partial(run_ablations, seeds=[0, 1], lams=[0.0], methods=["amcf-lam", "amcf-k"])
    with monkeypatch.context() as patch:
        patch.setattr(fanout, "attached", lambda: False)  # as without a cluster
        run(_setting(digits, sources, tmp_path / "seq", epochs=1))
    run(_setting(digits, sources, tmp_path / "ray", epochs=1))

    assert sorted(p.parent.parent.name for p in (tmp_path / "ray").rglob("metrics.json")
                  if "results" in p.parts) == ["amcf-k1", "amcf-k1", "amcf-lam0", "amcf-lam0"]
    assert differences(tmp_path / "seq", tmp_path / "ray") == []


def _rugged(scheme):
    return math.sin(0.37 * sum((j + 1) * k for j, k in enumerate(scheme))) - 0.01 * sum(
        (k - 5) ** 2 for k in scheme)


def test_a_sync_swarm_generation_on_ray_equals_the_sequential_one(local_ray):
    sequential = pso_sync(_rugged, 3, high=10, particles=4, iterations=2, seed=1)
    parallel = pso_sync(_rugged, 3, high=10, particles=4, iterations=2, seed=1,
                        executor=fanout.executor())
    assert isinstance(fanout.executor(), fanout.RayExecutor)
    assert parallel.history == sequential.history and parallel.best == sequential.best


def _parent(pid: int | str) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _kill_when_trained(work: Path, epochs_done: int, seen: dict) -> None:
    """SIGKILL the Ray worker running run_amcf_variant once ``epochs_done`` epochs are checkpointed
    (a worker of this process's Ray: its parent is the raylet this process started)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        history = next(work.rglob("history.csv"), None)
        rows = history.read_text().splitlines()[1:] if history else []
        if len(rows) >= epochs_done:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                    mine = _parent(_parent(pid)) == os.getpid()
                except (OSError, ValueError, IndexError):
                    continue
                if mine and cmdline.startswith(b"ray::run_amcf_variant"):  # named after its task
                    os.kill(int(pid), signal.SIGKILL)
                    seen.update(pid=int(pid), rows=rows, finished=(history.parent /
                                                                   "metrics.json").exists())
                    return
        time.sleep(0.01)


def test_a_worker_killed_mid_training_resumes_to_the_same_metrics(digits, sources, tmp_path,
                                                                  local_ray):
    epochs = 8
    run_amcf_variant(_setting(digits, sources, tmp_path / "seq", epochs), seed=0)

    seen: dict = {}
    killer = threading.Thread(target=_kill_when_trained, args=(tmp_path / "ray/work", 2, seen))
    killer.start()
    [out] = fanout.run_all([partial(run_amcf_variant,
                                    _setting(digits, sources, tmp_path / "ray", epochs), seed=0)])
    killer.join()

    assert seen and not seen["finished"]  # killed in the middle of the training
    with pytest.raises(ProcessLookupError):
        os.kill(seen["pid"], 0)
    final = next((tmp_path / "ray/work").rglob("history.csv")).read_text().splitlines()[1:]
    # epoch 1 was checkpointed before the kill and not trained again: even its time is kept
    assert final[0] == seen["rows"][0] and len(final) == epochs
    assert (out / "metrics.json").exists()
    assert differences(tmp_path / "seq", tmp_path / "ray") == []


# ---- comparing runs ------------------------------------------------------------------------

def test_results_compare_equal_apart_from_timings(tmp_path):
    for run, seconds in (("a", 1.5), ("b", 2.5)):
        folder = tmp_path / run / "results/x"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps(
            {"test_acc": 0.5, "wall_time_s": seconds, "members": [{"seconds": seconds}]}))
        (folder / "history.csv").write_text(f"epoch,val_acc,seconds\n1,0.5,{seconds}\n")
    assert differences(tmp_path / "a", tmp_path / "b") == []

    (tmp_path / "b/results/x/history.csv").write_text("epoch,val_acc,seconds\n1,0.51,2.5\n")
    (tmp_path / "b/results/x/extra.json").write_text("{}")
    assert differences(tmp_path / "a", tmp_path / "b") == [
        "results/x/extra.json: only in " + str(tmp_path / "b"),
        "results/x/history.csv: differs",
    ]
