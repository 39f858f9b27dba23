"""Ray as the execution engine: stages on a toy DVC repository, fan-out, a killed worker."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest
from cluster_support import BIN, clean, toy_repo
from cluster_support import env as cluster_env

ray = pytest.importorskip("ray")

from amcf.search.pso import pso_sync  # noqa: E402
from amcf.train import config  # noqa: E402
from amcf.train.config import TrainConfig  # noqa: E402
from compendium.pipeline import cluster, fanout  # noqa: E402
from compendium.stages.ablations import run_ablations  # noqa: E402
from compendium.stages.runs import Setting, run_amcf_variant  # noqa: E402
from scripts.same_results import differences  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs for this module (tasks pickle this module's functions)."""
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


# ---- stages --------------------------------------------------------------------------------

@pytest.fixture
def toy(tmp_path, monkeypatch):
    toy_repo(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    return tmp_path


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
    assert clean(toy)  # committed: DVC sees the pipeline as up to date
    assert cluster.plan(".").order == []


def test_a_dry_run_lists_what_would_run_and_then_says_all_is_up_to_date(toy, local_ray,
                                                                      capsys):
    """scripts/cluster-check reads the last line: its reference must be up to date."""
    assert cluster.main(["--dry"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed[-1] == "join" and "pretrain@a" in listed
    cluster.execute(cluster.plan("."), log_dir=Path("logs"), task_cpus=1)
    capsys.readouterr()
    assert cluster.main(["--dry"]) == 0
    assert capsys.readouterr().out == "every stage is up to date\n"


def test_a_failed_stage_is_reported_and_the_others_are_committed(toy, local_ray, capsys):
    text = (toy / "dvc.yaml").read_text().replace(
        "mkdir -p out &&", "mkdir -p out && test ${key} != a || { echo no luck for a; exit 3; } &&")
    (toy / "dvc.yaml").write_text(text)

    outcome = cluster.execute(cluster.plan("."), log_dir=Path("logs"), task_cpus=1)

    assert list(outcome.failed) == ["pretrain@a"]
    assert outcome.done == ["pretrain@b"] and outcome.skipped == ["join"]
    assert "no luck for a" in capsys.readouterr().out  # the log's tail is printed
    assert clean(toy, "pretrain@b") and not clean(toy, "pretrain@a")


def test_stage_selection_by_group_and_pattern(toy):
    assert sorted(cluster.plan(".", ["pretrain"]).order) == ["pretrain@a", "pretrain@b"]
    assert cluster.plan(".", ["pretrain@?"]).order == cluster.plan(".", ["pretrain"]).order
    assert set(cluster.plan(".", ["join"]).order) == {"pretrain@a", "pretrain@b", "join"}
    with pytest.raises(SystemExit, match="no stage named 'serch'"):
        cluster.plan(".", ["serch"])


def test_resources_by_stage_kind():
    # a GPU stage asks for the CPUs of its loop and DataLoader workers (gpu_task_cpus)
    assert cluster.resources("pretrain@mnist", has_gpus=True, task_cpus=4, gpu_cpus=8) == {
        "num_gpus": 1, "num_cpus": 8}
    assert cluster.resources("pretrain@mnist", has_gpus=False, task_cpus=4) == {"num_cpus": 4}
    # a fan-out stage holds nothing while its trainings, Ray tasks of their own, wait for CPUs
    # (amcf@ runs every seed as a task: holding CPUs itself deadlocked a 2-CPU Ray; search@
    # runs every search seed as a task)
    for stage in ("search@digits", "amcf@digits", "baselines@digits", "ablations@digits"):
        assert cluster.resources(stage, has_gpus=True, task_cpus=4) == {"num_cpus": 0}
    assert cluster.resources("report", has_gpus=True, task_cpus=2) == {"num_cpus": 2}


def _node(cpus: float, gpus: float = 0, alive: bool = True) -> dict:
    return {"Alive": alive, "Resources": {"CPU": cpus, **({"GPU": gpus} if gpus else {})}}


def test_a_gpu_training_asks_for_its_loop_and_its_loader_workers():
    # 32 CPUs for 4 GPUs: 8 a GPU, 7 of them DataLoader workers; every GPU trains at once
    assert fanout.gpu_task_cpus([_node(32, 4), _node(64)]) == 8
    assert fanout.gpu_task_cpus([_node(16, 1)]) == 9  # 8 workers at most, as `auto` starts
    assert fanout.gpu_task_cpus([_node(8, 4), _node(48, 2), _node(96, 1, alive=False)]) == 9
    assert fanout.gpu_task_cpus([_node(2, 2)]) == 1  # a CPU for each GPU: no workers
    assert fanout.task_threads({"CPU": 8, "GPU": 1}) == 1  # the other 7 feed it
    assert fanout.task_threads({"CPU": 3}) == 3


def test_auto_loader_workers_use_the_cpus_ray_gave(monkeypatch):
    auto = TrainConfig(num_workers="auto")
    monkeypatch.setenv("AMCF_CPUS", "8")
    assert auto.workers() == min(7, config.usable_cores() - 1)
    monkeypatch.setenv("AMCF_CPUS", "1")
    assert auto.workers() == 0 and TrainConfig(num_workers=3).workers() == 3
    monkeypatch.setenv("AMCF_CPUS", "two")
    with pytest.raises(ValueError, match="AMCF_CPUS='two'"):
        auto.workers()


def test_no_request_exceeds_the_largest_node():
    said = []
    assert fanout.clamp_cpus(4, [_node(8), _node(16, 2)], "a stage", log=said.append) == 4
    assert said == []
    assert fanout.clamp_cpus(24, [_node(8), _node(16, 2)], "a stage", log=lambda m, **_:
                             said.append(m)) == 16
    assert said and "a stage would ask Ray for 24 CPUs" in said[0] and "has 16" in said[0]


def test_no_more_fan_out_stages_at_once_than_trainings(tmp_path, local_ray, monkeypatch):
    assert cluster.fan_out_slots({"CPU": 2.0}, task_cpus=1) == 2
    assert cluster.fan_out_slots({"CPU": 64.0, "GPU": 4.0}, task_cpus=1) == 4
    assert cluster.fan_out_slots({"CPU": 2.0}, task_cpus=4) == 1
    toy_repo(tmp_path, keys="abc", kind="search")  # each waits ~3 s, holding no CPU
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")

    outcome = cluster.execute(cluster.plan("."), log_dir=Path("logs"), task_cpus=1)

    assert not outcome.failed and outcome.done[-1] == "join"
    spans = sorted((float((tmp_path / f"out/{k}.start").read_text()),
                    float((tmp_path / f"out/{k}.end").read_text())) for k in "abc")
    assert spans[1][0] < spans[0][1]  # two at once, on a Ray of 2 CPUs
    assert spans[2][0] >= min(spans[0][1], spans[1][1])  # the third waited for one of them


# ---- a fresh clone, outputs, commits ---------------------------------------------------------

def _data_source(root: Path, stage: str = "") -> None:
    """``data/x.txt`` tracked by data.dvc, then gone with DVC's cache, as in a fresh clone;
    ``stage``: more of dvc.yaml."""
    (root / "data").mkdir()
    (root / "data/x.txt").write_text("raw\n")
    subprocess.run(["dvc", "add", "-q", "data"], cwd=root, check=True, env=cluster_env())
    shutil.rmtree(root / "data")
    shutil.rmtree(root / ".dvc/cache")
    with open(root / "dvc.yaml", "a") as out:
        out.write(stage)


def test_a_fresh_clone_fetches_the_missing_inputs_first(toy, local_ray, monkeypatch):
    _data_source(toy, "  prep:\n    cmd: cat data/x.txt > prep.txt\n    deps:\n"
                      "      - data/x.txt\n    outs:\n      - prep.txt\n")
    stage_plan = cluster.plan(".")
    assert stage_plan.missing == ["data/x.txt"] and stage_plan.sources == ["data.dvc"]
    with pytest.raises(SystemExit, match=r"missing: data/x\.txt\. Fix: fetch them first: "
                                         r"amcf data fetch --profile embedded$"):
        cluster.fetch_inputs(stage_plan, fetch=False)

    # `amcf data fetch` as it fills data/ from a mirror or the web, logging how it was called
    fake = toy / "bin/amcf"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 3\n")  # offline, say
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    with pytest.raises(SystemExit, match=r"`amcf data fetch --profile embedded` failed \(3; "
                                         r".*on a cluster, its login node"):
        cluster.fetch_inputs(stage_plan)
    fake.write_text('#!/bin/sh\necho "$@" > fetched.txt && mkdir data && echo raw > data/x.txt\n')
    assert cluster.fetch_inputs(stage_plan)
    assert (toy / "fetched.txt").read_text() == "data fetch --profile embedded\n"
    stage_plan = cluster.plan(".")
    assert stage_plan.missing == [] and stage_plan.sources == ["data.dvc"]
    outcome = cluster.execute(stage_plan, log_dir=Path("logs"), task_cpus=1)

    assert outcome.done[0] == "data.dvc" and "prep" in outcome.done and not outcome.failed
    assert (toy / "prep.txt").read_text() == "raw\n" and clean(toy)


def test_absent_data_that_no_stage_needs_is_left_as_dvc_repro_leaves_it(toy, local_ray):
    _data_source(toy)  # the paper profile's stages never read data/
    stage_plan = cluster.plan(".")
    assert stage_plan.absent == ["data.dvc"] and stage_plan.sources == []
    assert stage_plan.missing == []

    outcome = cluster.execute(stage_plan, log_dir=Path("logs"), task_cpus=1)

    assert not outcome.failed and outcome.done[-1] == "join"
    assert clean(toy, *stage_plan.order) and not clean(toy, "data.dvc")


def test_outputs_are_removed_before_a_stage_runs_but_persistent_ones_kept(tmp_path, local_ray,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{BIN}:{os.environ['PATH']}")
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run(["dvc", "init", "-q"], check=True)
    Path("dvc.yaml").write_text(
        "stages:\n  s:\n    cmd: mkdir -p dir && echo new > dir/new.txt && echo run >> kept.txt\n"
        "    outs:\n      - dir\n      - kept.txt:\n          persist: true\n")
    Path("dir").mkdir()
    Path("dir/stale.txt").write_text("from an earlier run, with other settings\n")
    Path("kept.txt").write_text("earlier\n")
    stage_plan = cluster.plan(".")
    assert stage_plan.outs == {"s": ["dir"]} and stage_plan.kept == {"s": ["kept.txt"]}

    outcome = cluster.execute(stage_plan, log_dir=Path("logs"), task_cpus=1)

    assert outcome.done == ["s"]
    assert sorted(p.name for p in Path("dir").iterdir()) == ["new.txt"]  # as `dvc repro`
    assert Path("kept.txt").read_text() == "earlier\nrun\n"
    assert "removed the stage's outputs of an earlier run: dir" in Path("logs/s.log").read_text()
    assert clean(tmp_path)


def test_commits_do_not_hold_up_the_stages(toy, local_ray, monkeypatch):
    text = (toy / "dvc.yaml").read_text().replace("cmd: cat",
                                                  "cmd: date +%s.%N > join.start && cat")
    (toy / "dvc.yaml").write_text(text)
    spans, real = {}, cluster.commit

    def slow_commit(stage, **kwargs):  # as when DVC hashes gigabytes
        began = time.time()
        time.sleep(4)
        real(stage, **kwargs)
        spans[stage] = (began, time.time())

    monkeypatch.setattr(cluster, "commit", slow_commit)
    outcome = cluster.execute(cluster.plan("."), log_dir=Path("logs"), task_cpus=1)

    assert sorted(outcome.done[:2]) == ["pretrain@a", "pretrain@b"] and outcome.done[2] == "join"
    # join started once both had run, while their commits were still going on, one at a time
    started = float((toy / "join.start").read_text())
    ends = sorted(end for _, end in spans.values())
    assert started < ends[1]
    assert spans["pretrain@a"][1] <= spans["pretrain@b"][0] or (
        spans["pretrain@b"][1] <= spans["pretrain@a"][0])
    assert clean(toy)


def test_what_cannot_be_recorded_says_what_failed_and_what_to_do(toy, local_ray, capsys):
    with pytest.raises(cluster.CommitFailed, match=r"(?s)`dvc commit -f join` failed \(exit "
                       r"\d+\): .*does not exist.*dvc status join"):
        cluster.commit("join", root=toy)

    text = (toy / "dvc.yaml").read_text().replace(" && date +%s.%N > out/${key}.end", "")
    (toy / "dvc.yaml").write_text(text)
    outcome = cluster.execute(cluster.plan("."), log_dir=Path("logs"), task_cpus=1)

    assert sorted(outcome.failed) == ["pretrain@a", "pretrain@b"] and outcome.skipped == ["join"]
    assert "did not write its declared outputs out/a.end" in capsys.readouterr().out


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


def test_asking_whether_ray_is_attached_does_not_import_it(monkeypatch):
    # a stage that never called ray.init runs locally; importing Ray to learn that cost every
    # training stage and worker about 3.5 s
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code = ("import sys; from compendium.pipeline import fanout; "
            "print(fanout.attached(), 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={k: v for k, v in os.environ.items()
                                          if k != "RAY_ADDRESS"}).stdout.split()
    assert out == ["False", "False"]


def test_an_initialised_ray_in_this_process_counts_as_attached(monkeypatch, local_ray):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert fanout.attached()
