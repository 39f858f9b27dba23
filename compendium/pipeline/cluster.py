"""``amcf cluster-run``: the pipeline's out-of-date stages as Ray tasks, committed as they end.

DVC runs one stage at a time. This driver asks DVC which stages are out of date and how they
depend on each other, submits each stage whose inputs are ready as a Ray task that runs the
stage's own command (its resources: :data:`GPU_STAGES`, :data:`FAN_OUT_STAGES`), and records
each finished stage with ``dvc commit`` from the driver as soon as it ends, so the pipeline
ends up exactly as ``dvc repro`` would leave it. A stage that fails is reported with its log;
what does not depend on it goes on, and everything that finished is committed.

Without ``--address`` (or ``RAY_ADDRESS``) a local Ray starts on this machine; with one, the
stages run on that Ray cluster, whose nodes must see this repository at the same path (a
shared filesystem). Each stage's command gets ``RAY_ADDRESS``, so the independent trainings
inside it run as Ray tasks of their own (:mod:`compendium.pipeline.fanout`).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compendium.pipeline.fanout import TASK_CPUS_ENV, limit_threads, runtime_env, task_cpus

# Stage kinds (the name before "@") that train: one GPU each when the cluster has GPUs.
GPU_STAGES = frozenset({"pretrain"})
# Stage kinds whose trainings are Ray tasks of their own: the stage itself asks for nothing,
# since a stage holding CPUs while it waits for its tasks could starve them.
FAN_OUT_STAGES = frozenset({"search", "amcf", "baselines", "ablations"})
# Every other stage asks for the CPUs of one training (see resources()).
LOCK_MARKERS = ("Unable to acquire lock", "is locked", "LockError")
STAGE_RETRIES = 2  # re-runs of a stage whose worker died; a stage that exits non-zero fails


@dataclass
class Plan:
    """Stages to run (in a topological order), their commands, and what each waits for."""

    order: list[str]
    cmds: dict[str, list[str]]
    waits_for: dict[str, set[str]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # changed data sources (data.dvc)


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.split("@")[0] == pattern or fnmatch.fnmatchcase(name, pattern)


def plan(repo_root: str | os.PathLike = ".", targets: Sequence[str] = ()) -> Plan:
    """The out-of-date stages among ``targets`` (names, groups such as ``search``, or
    patterns such as ``baselines@*``) and what they need, or among all stages."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(os.fspath(repo_root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        stages = {s.addressing: s for s in repo.index.stages}
        wanted = set(stages)
        if targets:
            wanted = set()
            for pattern in targets:
                matched = [a for a in stages if _matches(a, pattern)]
                if not matched:
                    raise SystemExit(f"amcf cluster-run: no stage named {pattern!r}; "
                                     "see `dvc stage list`")
                for a in matched:
                    wanted |= {a} | {d.addressing for d in nx.descendants(graph, stages[a])}
        with repo.lock:
            stale = {a for a in wanted if stages[a].changed()}
        # a stage downstream of a stale one is stale too, whatever its own status says
        for a in list(stale):
            stale |= {u.addressing for u in nx.ancestors(graph, stages[a])
                      if u.addressing in wanted}
        topo = [s.addressing for s in reversed(list(nx.topological_sort(graph)))]
        sources = [a for a in topo if a in stale and not getattr(stages[a], "cmd", None)]
        order = [a for a in topo if a in stale and a not in sources]
        cmds = {a: _as_list(stages[a].cmd) for a in order}
        waits = {a: {d.addressing for d in graph.successors(stages[a])} & set(order)
                 for a in order}
    return Plan(order, cmds, waits, sources)


def _as_list(cmd: str | list[str]) -> list[str]:
    return [cmd] if isinstance(cmd, str) else list(cmd)


def kind(stage: str) -> str:
    return stage.split("@")[0]


def resources(stage: str, has_gpus: bool, task_cpus: int) -> dict[str, float]:
    """What a stage asks Ray for (see :data:`GPU_STAGES` and :data:`FAN_OUT_STAGES`)."""
    if kind(stage) in FAN_OUT_STAGES:
        return {"num_cpus": 0}
    if kind(stage) in GPU_STAGES and has_gpus:
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": task_cpus}


def log_path(log_dir: Path, stage: str) -> Path:
    return log_dir / f"{stage.replace('@', '--')}.log"


def _die_with_parent() -> None:
    """In the stage's process: end it when the Ray worker running it dies (Linux)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run_stage(root: str, cmds: list[str], log: str, address: str, task_cpus: int) -> int:
    """Run one stage's command in ``root`` (a Ray task); its output goes to ``log``."""
    import ray

    assigned = ray.get_runtime_context().get_assigned_resources()
    threads = limit_threads(assigned.get("CPU", 0) or 1)
    env = dict(os.environ, RAY_ADDRESS=address, **{TASK_CPUS_ENV: str(task_cpus)},
               PYTHONUNBUFFERED="1")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        out.write(f"$ {' && '.join(cmds)}\n")
        out.flush()
        proc = subprocess.run(" && ".join(cmds), shell=True, cwd=root, env=env, stdout=out,
                              stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    return proc.returncode


def commit(stage: str, *, delay: float = 2.0) -> None:
    """``dvc commit -f stage``, waiting while another process holds DVC's lock (a commit of
    large outputs may hold it for minutes)."""
    waited = 0.0
    while True:
        proc = subprocess.run(["dvc", "commit", "-f", "-q", stage], capture_output=True,
                              text=True)
        if proc.returncode == 0:
            return
        if not any(m in proc.stderr + proc.stdout for m in LOCK_MARKERS):
            raise RuntimeError(f"dvc commit {stage} failed:\n{proc.stderr}{proc.stdout}")
        if waited and waited % 60 < delay:
            print(f"  waiting for DVC's lock to commit {stage} ({waited:.0f} s)", flush=True)
        time.sleep(delay)
        waited += delay


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text[-lines:])


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)  # in the order they were committed
    failed: dict[str, Path] = field(default_factory=dict)  # stage -> its log
    skipped: list[str] = field(default_factory=list)  # not run: something they need failed


def execute(stage_plan: Plan, *, log_dir: Path, task_cpus: int,
            root: str | os.PathLike = ".") -> Outcome:
    """Run the plan on the attached Ray cluster; commit each stage as it ends."""
    import ray

    root = os.path.abspath(root)
    log_dir = Path(root) / log_dir
    address = ray.get_runtime_context().gcs_address
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    remote = ray.remote(run_stage)
    for source in stage_plan.sources:  # as `dvc repro` does for a changed data source
        commit(source)
        print(f"committed {source} (its data changed)", flush=True)
    outcome = Outcome()
    pending = list(stage_plan.order)
    running: dict[Any, str] = {}
    while pending or running:
        for a in list(pending):
            needs = stage_plan.waits_for[a]
            if needs & (set(outcome.failed) | set(outcome.skipped)):
                pending.remove(a)
                outcome.skipped.append(a)
                continue
            if needs <= set(outcome.done):
                options = {**resources(a, has_gpus, task_cpus), "name": a,
                           "max_retries": STAGE_RETRIES}
                ref = remote.options(**options).remote(
                    root, stage_plan.cmds[a], str(log_path(log_dir, a)), address, task_cpus)
                running[ref] = a
                pending.remove(a)
                print(f"start  {a}", flush=True)
        if not running:  # nothing left that can start
            break
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            a = running.pop(ref)
            try:
                code = ray.get(ref)
            except ray.exceptions.RayError as err:  # its worker died more than STAGE_RETRIES
                code = f"lost ({type(err).__name__})"
            if code == 0:
                commit(a)
                outcome.done.append(a)
                print(f"done   {a}", flush=True)
            else:
                outcome.failed[a] = log_path(log_dir, a)
                print(f"FAILED {a} (exit {code}); its log, {outcome.failed[a]}, ends:\n"
                      f"{_tail(outcome.failed[a])}", flush=True)
    return outcome


def start_ray(address: str | None, num_cpus: int | None) -> Any:
    """Attach to the cluster at ``address`` or start a local Ray; print where to watch it."""
    import ray

    if address:
        ctx = ray.init(address=address, log_to_driver=False, runtime_env=runtime_env())
        print(f"Ray cluster at {address}: {ray.cluster_resources()}", flush=True)
    else:
        ctx = ray.init(num_cpus=num_cpus, log_to_driver=False, runtime_env=runtime_env())
        print(f"started a local Ray: {ray.cluster_resources()}", flush=True)
    if ctx.dashboard_url:
        print(f"Ray dashboard: http://{ctx.dashboard_url}", flush=True)
    else:
        print("Ray dashboard: disabled (pip install 'ray[default]' for it)", flush=True)
    return ctx


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amcf cluster-run",
        description="Run the out-of-date DVC stages as Ray tasks and commit each as it ends.")
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stages", nargs="*", metavar="STAGE",
                        help="stages, stage groups (search) or patterns (baselines@*); "
                             "default: every stage")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS") or None,
                        help="a running Ray cluster (host:port; default: $RAY_ADDRESS, else "
                             "start a local Ray)")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="CPUs of the local Ray (default: all of this machine's)")
    parser.add_argument("--task-cpus", type=int, default=None,
                        help="CPUs (threads) of one training without a GPU (default: one, "
                             "the numerical policy's; with AMCF_NUMERICS=native, the threads "
                             "torch uses here, as a sequential `dvc repro` would)")
    parser.add_argument("--logs", default="build/logs", help="one log per stage here")
    parser.add_argument("--dry", action="store_true", help="list the stages that would run")


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    if not isinstance(args, argparse.Namespace):
        args = _parser().parse_args(args)
    if args.task_cpus is not None and args.task_cpus < 1:
        raise SystemExit("amcf cluster-run: --task-cpus must be at least 1")
    try:
        import ray  # noqa: F401
    except ImportError:
        print("amcf cluster-run needs Ray: pip install -e '.[cluster]'", file=sys.stderr)
        return 2
    from compendium.params import launch_problem

    problem = None if args.dry else launch_problem("params.yaml", remote=bool(args.address))
    if problem:  # CUDA required and missing here (or no readable YAML): stop before any stage
        print(f"amcf cluster-run: error: {problem}", file=sys.stderr)
        return 2
    stage_plan = plan(".", args.stages)
    if not stage_plan.order and not stage_plan.sources:
        print("every stage is up to date")
        return 0
    if args.dry:
        for a in stage_plan.order:
            print(a)
        return 0
    if args.task_cpus is None:
        args.task_cpus = task_cpus()
    started = time.perf_counter()
    start_ray(args.address, args.num_cpus)
    outcome = execute(stage_plan, log_dir=Path(args.logs), task_cpus=args.task_cpus)
    print(f"{len(outcome.done)} stages run and committed in "
          f"{time.perf_counter() - started:.0f} s; logs in {args.logs}/")
    if outcome.failed:
        print(f"failed: {', '.join(outcome.failed)}; not run (they need a failed stage): "
              f"{', '.join(outcome.skipped) or 'none'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
