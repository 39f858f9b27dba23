"""``amcf cluster-run``: the pipeline's out-of-date stages as Ray tasks, committed as they end.

DVC runs one stage at a time. This driver asks DVC which stages are out of date and how they
depend on each other, fetches the active profile's raw inputs first where they are missing
(as ``make reproduce`` does), submits each stage whose inputs are ready as a Ray task that
removes the stage's declared outputs and runs its own command (as ``dvc repro`` does; its
resources: :data:`GPU_STAGES`, :data:`FAN_OUT_STAGES`), and records each finished stage with
``dvc commit``, one at a time in a thread of the driver while the scheduling goes on, so the
pipeline ends up exactly as ``dvc repro`` would leave it. A stage that fails is reported with
its log; what does not depend on it goes on, and everything that finished is committed.

Without ``--address`` (or ``RAY_ADDRESS``) a local Ray starts on this machine; with one, the
stages run on that Ray cluster, whose nodes must see this repository at the same path (a
shared filesystem). Each stage's command gets ``RAY_ADDRESS``, so the independent trainings
inside it run as Ray tasks of their own (:mod:`compendium.pipeline.fanout`).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compendium.pipeline.fanout import (
    TASK_CPUS_ENV,
    clamp_cpus,
    enter_task,
    gpu_task_cpus,
    runtime_env,
    task_cpus,
)

# Stage kinds (the name before "@") that train: one GPU each when the cluster has GPUs.
GPU_STAGES = frozenset({"pretrain"})
# Stage kinds whose trainings are Ray tasks of their own: the stage itself asks for nothing,
# since a stage holding CPUs while it waits for its tasks could starve them.
FAN_OUT_STAGES = frozenset({"search", "amcf", "baselines", "ablations"})
# Every other stage asks for the CPUs of one training (see resources()).
LOCK_MARKERS = ("Unable to acquire lock", "is locked", "LockError")
STAGE_RETRIES = 2  # re-runs of a stage whose worker died; a stage that exits non-zero fails
# The `amcf data fetch --profile` that fetches each profile's raw inputs (the rehearsal's
# are miniatures of the paper's, served in their place)
FETCH_PROFILES = {"embedded": "embedded", "paper": "paper", "rehearsal": "paper"}


@dataclass
class Plan:
    """Stages to run (in a topological order), their commands, and what each waits for."""

    order: list[str]
    cmds: dict[str, list[str]]
    waits_for: dict[str, set[str]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # changed data sources (data.dvc): commit
    # data sources whose data is absent and that no stage to run needs: left as they are, as
    # `dvc repro` leaves them (the paper profile never reads data/)
    absent: list[str] = field(default_factory=list)
    # dependencies of the stages to run that are absent and that no stage writes: raw inputs
    missing: list[str] = field(default_factory=list)
    outs: dict[str, list[str]] = field(default_factory=dict)  # removed before the stage runs
    kept: dict[str, list[str]] = field(default_factory=dict)  # `persist: true`: never removed

    @property
    def up_to_date(self) -> bool:
        """Nothing to run, record or fetch (scripts/cluster-check reads the line that says so)."""
        return not self.order and not self.sources and not self.missing


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.split("@")[0] == pattern or fnmatch.fnmatchcase(name, pattern)


def _overlap(a: str, b: str) -> bool:
    """Whether one path is the other or lies inside it."""
    return a == b or a.startswith(b + os.sep) or b.startswith(a + os.sep)


def plan(repo_root: str | os.PathLike = ".", targets: Sequence[str] = ()) -> Plan:
    """The out-of-date stages among ``targets`` (names, groups such as ``search``, or
    patterns such as ``baselines@*``) and what they need, or among all stages."""
    import networkx as nx
    from dvc.dependency.param import ParamsDependency
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

        def needed(a: str) -> bool:
            return any(u.addressing in order for u in graph.predecessors(stages[a]))

        absent = [a for a in sources
                  if not all(out.exists for out in stages[a].outs) and not needed(a)]
        sources = [a for a in sources if a not in absent]
        written = [out.fs_path for s in stages.values() if getattr(s, "cmd", None)
                   for out in s.outs]
        missing = sorted({os.path.relpath(d.fs_path, repo.root_dir)
                          for a in order for d in stages[a].deps
                          if not isinstance(d, ParamsDependency) and not os.path.exists(d.fs_path)
                          and not any(_overlap(d.fs_path, w) for w in written)})
        cmds = {a: _as_list(stages[a].cmd) for a in order}
        waits = {a: {d.addressing for d in graph.successors(stages[a])} & {*order, *sources}
                 for a in order}

        def rel_outs(a: str, persist: bool) -> list[str]:
            return [os.path.relpath(o.fs_path, repo.root_dir) for o in stages[a].outs
                    if bool(o.persist) == persist]

        outs = {a: rel_outs(a, False) for a in order}
        kept = {a: rel_outs(a, True) for a in order if rel_outs(a, True)}
    return Plan(order, cmds, waits, sources, absent, missing, outs, kept)


def _as_list(cmd: str | list[str]) -> list[str]:
    return [cmd] if isinstance(cmd, str) else list(cmd)


def kind(stage: str) -> str:
    return stage.split("@")[0]


def resources(stage: str, has_gpus: bool, task_cpus: int, gpu_cpus: int = 1) -> dict[str, float]:
    """What a stage asks Ray for (see :data:`GPU_STAGES` and :data:`FAN_OUT_STAGES`): a GPU
    stage one GPU and ``gpu_cpus`` CPUs (its loop and DataLoader workers:
    :func:`compendium.pipeline.fanout.gpu_task_cpus`), any other ``task_cpus``."""
    if kind(stage) in FAN_OUT_STAGES:
        return {"num_cpus": 0}
    if kind(stage) in GPU_STAGES and has_gpus:
        return {"num_gpus": 1, "num_cpus": gpu_cpus}
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


def remove_outputs(root: str | os.PathLike, outs: Sequence[str]) -> list[str]:
    """Delete a stage's declared outputs before it runs, as ``dvc repro`` does, so that no
    stale file of an earlier run is committed with the new ones; the paths removed."""
    removed = []
    for rel in outs:
        path = Path(root) / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(rel)
    return removed


def run_stage(root: str, cmds: list[str], log: str, address: str, task_cpus: int,
              outs: Sequence[str] = ()) -> int:
    """Run one stage's command in ``root`` (a Ray task) after removing its declared ``outs``;
    its output goes to ``log``."""
    import ray

    enter_task(ray.get_runtime_context().get_assigned_resources())  # AMCF_CPUS, threads
    env = dict(os.environ, RAY_ADDRESS=address, **{TASK_CPUS_ENV: str(task_cpus)},
               PYTHONUNBUFFERED="1")
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        removed = remove_outputs(root, outs)
        if removed:
            out.write(f"removed the stage's outputs of an earlier run: {' '.join(removed)}\n")
        out.write(f"$ {' && '.join(cmds)}\n")
        out.flush()
        proc = subprocess.run(" && ".join(cmds), shell=True, cwd=root, env=env, stdout=out,
                              stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    return proc.returncode


class CommitFailed(RuntimeError):
    """``dvc commit`` of a stage failed for another reason than DVC's lock."""


def commit(stage: str, *, delay: float = 2.0, root: str | os.PathLike | None = None) -> None:
    """``dvc commit -f stage``, waiting while another process holds DVC's lock (a commit of
    large outputs may hold it for minutes)."""
    waited = 0.0
    while True:
        proc = subprocess.run(["dvc", "commit", "-f", stage], capture_output=True, text=True,
                              cwd=root, stdin=subprocess.DEVNULL)
        said = (proc.stderr + proc.stdout).strip()
        if proc.returncode == 0:
            return
        if not any(m in said for m in LOCK_MARKERS):
            raise CommitFailed(
                f"`dvc commit -f {stage}` failed (exit {proc.returncode}): "
                f"{said or 'DVC said nothing'}\n  The stage ran, but DVC could not record it. "
                f"Fix: see what DVC sees with `dvc status {stage}`; once the cause is "
                f"fixed, `dvc commit -f {stage}` records the stage without running it again.")
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


@dataclass
class _Run:
    """The scheduling state of :func:`execute`."""

    plan: Plan
    outcome: Outcome = field(default_factory=Outcome)
    # ran and wrote its outputs (or a data source whose data is there): what needs it may start
    finished: set[str] = field(default_factory=set)
    running: dict[Any, str] = field(default_factory=dict)  # Ray ref -> stage
    commits: dict[Future, str] = field(default_factory=dict)  # dvc commit in flight -> stage

    def blocked(self, needs: set[str]) -> bool:
        return bool(needs & (set(self.outcome.failed) | set(self.outcome.skipped)))

    def fanning(self) -> int:
        """Fan-out stages running now."""
        return sum(kind(a) in FAN_OUT_STAGES for a in self.running.values())


def fan_out_slots(cluster: dict[str, float], task_cpus: int) -> int:
    """How many fan-out stages run at once: one per GPU, or per training's CPUs without
    GPUs. A fan-out stage asks Ray for nothing, but its process (a notebook's kernel, its
    imports) holds memory while it waits for its trainings, and more stages at once than
    trainings at once only wait."""
    if cluster.get("GPU", 0) >= 1:
        return int(cluster["GPU"])
    return max(1, int(cluster.get("CPU", 1) // max(1, task_cpus)))


def execute(stage_plan: Plan, *, log_dir: Path, task_cpus: int,
            root: str | os.PathLike = ".") -> Outcome:
    """Run the plan on the attached Ray cluster; commit each stage as it ends."""
    import ray

    root = os.path.abspath(root)
    log_dir = Path(root) / log_dir
    address = ray.get_runtime_context().gcs_address
    nodes = ray.nodes()
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    gpu_cpus = gpu_task_cpus(nodes)
    task_cpus = clamp_cpus(task_cpus, nodes, "a stage without a GPU")
    slots = fan_out_slots(ray.cluster_resources(), task_cpus)
    # a GPU stage gets a fresh worker process each (see compendium.pipeline.fanout)
    remotes = {False: ray.remote(run_stage),
               True: ray.remote(num_gpus=1, max_calls=1)(run_stage)}
    state = _Run(stage_plan)
    for source in stage_plan.absent:
        print(f"skip   {source}: its data is absent and no stage to run needs it (as `dvc "
              "repro` leaves it)", flush=True)
    with ThreadPoolExecutor(1, thread_name_prefix="dvc-commit") as committer:
        def record(stage: str) -> None:
            state.finished.add(stage)
            state.commits[committer.submit(commit, stage, root=root)] = stage

        for source in stage_plan.sources:  # as `dvc repro` does for a changed data source
            record(source)
        pending = list(stage_plan.order)
        while pending or state.running or state.commits:
            for a in list(pending):
                needs = stage_plan.waits_for[a]
                if state.blocked(needs):
                    pending.remove(a)
                    state.outcome.skipped.append(a)
                elif needs <= state.finished and (kind(a) not in FAN_OUT_STAGES
                                                  or state.fanning() < slots):
                    res = resources(a, has_gpus, task_cpus, gpu_cpus)
                    options = {**res, "name": a, "max_retries": STAGE_RETRIES}
                    options.pop("num_gpus", None)  # in the decorator of the GPU remote
                    ref = remotes["num_gpus" in res].options(**options).remote(
                        root, stage_plan.cmds[a], str(log_path(log_dir, a)), address,
                        task_cpus, stage_plan.outs.get(a, []))
                    state.running[ref] = a
                    pending.remove(a)
                    print(f"start  {a}", flush=True)
            if not state.running and not state.commits:  # nothing left that can start
                break
            _harvest_runs(state, log_dir, root, record)
            _harvest_commits(state, log_dir)
    return state.outcome


def _harvest_runs(state: _Run, log_dir: Path, root: str, record) -> None:
    """Wait for a stage to end (briefly while commits are in flight); record the finished."""
    import ray

    if not state.running:
        wait_futures(list(state.commits), return_when=FIRST_COMPLETED)
        return
    ready, _ = ray.wait(list(state.running), num_returns=1,
                        timeout=1.0 if state.commits else None)
    for ref in ready:
        a = state.running.pop(ref)
        try:
            code = ray.get(ref)
        except ray.exceptions.RayError as err:  # its worker died more than STAGE_RETRIES
            code = f"lost ({type(err).__name__})"
        lacking = [o for o in state.plan.outs.get(a, []) + state.plan.kept.get(a, [])
                   if not os.path.lexists(os.path.join(root, o))]
        if code == 0 and not lacking:
            record(a)
            print(f"ran    {a}; recording it with dvc commit", flush=True)
            continue
        state.outcome.failed[a] = log_path(log_dir, a)
        why = (f"exit {code}" if code != 0 else
               f"exit 0, but it did not write its declared outputs {', '.join(lacking)}")
        print(f"FAILED {a} ({why}); its log, {state.outcome.failed[a]}, ends:\n"
              f"{_tail(state.outcome.failed[a])}", flush=True)


def _harvest_commits(state: _Run, log_dir: Path) -> None:
    for future in [f for f in state.commits if f.done()]:
        a = state.commits.pop(future)
        error = future.exception()
        if error is None:
            state.outcome.done.append(a)
            print(f"done   {a}", flush=True)
        else:
            state.outcome.failed[a] = log_path(log_dir, a)
            print(f"FAILED {a}: {error}", flush=True)


def fetch_inputs(stage_plan: Plan, *, fetch: bool = True, root: str | os.PathLike = ".",
                 log=print) -> bool:
    """Fetch the active profile's raw inputs where the stages to run miss some, with the
    ``amcf data fetch`` that ``make reproduce`` runs before ``dvc repro``; or stop, naming it,
    when ``fetch`` is False or it cannot give them. Returns whether it fetched."""
    if not stage_plan.missing:
        return False
    import yaml

    from compendium.data.commands import DATA_DIRS

    params = yaml.safe_load((Path(root) / "params.yaml").read_text(encoding="utf-8")) or {}
    profile = FETCH_PROFILES.get(params.get("profile", "embedded"), "embedded")
    data_dir = os.path.normpath(str(params.get("data_dir") or DATA_DIRS[profile]))
    argv = ["amcf", "data", "fetch", "--profile", profile]
    if data_dir != DATA_DIRS[profile]:
        argv += ["--data-dir", data_dir]
    command = " ".join(argv)
    shown = ", ".join(stage_plan.missing[:8]) + (
        f" and {len(stage_plan.missing) - 8} more" if len(stage_plan.missing) > 8 else "")
    elsewhere = [m for m in stage_plan.missing if not _overlap(os.path.normpath(m), data_dir)]
    if elsewhere:
        raise SystemExit(
            f"amcf cluster-run: inputs of the stages to run are missing: {', '.join(elsewhere)}; "
            f"`{command}` does not fetch them (it fills {data_dir}/). Fix: put them in place "
            "(your own data: the folder params.yaml's datasets name), or run fewer stages.")
    if not fetch:
        raise SystemExit(f"amcf cluster-run: inputs of the stages to run are missing: {shown}. "
                         f"Fix: fetch them first: {command}")
    log(f"inputs of the stages to run are missing ({shown}): first `{command}`", flush=True)
    try:
        code = subprocess.run(argv, cwd=root, stdin=subprocess.DEVNULL).returncode
    except FileNotFoundError:
        code = "amcf is not on PATH: activate the environment, e.g. PATH=$PWD/.venv/bin:$PATH"
    if code != 0:
        raise SystemExit(
            f"amcf cluster-run: `{command}` failed ({code}; its message is above). Fix that, "
            "or fetch on a machine with internet (on a cluster, its login node) and run again.")
    return True


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
    parser.add_argument("--no-fetch", action="store_true",
                        help="stop, naming the `amcf data fetch` to run, where raw inputs of "
                             "the stages are missing (default: fetch them first)")
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
    started = time.perf_counter()
    stage_plan = plan(".", args.stages)
    if args.dry:
        if stage_plan.up_to_date:
            print("every stage is up to date")
            return 0
        if stage_plan.missing:
            print(f"(first fetched, missing: {', '.join(stage_plan.missing)})")
        for a in stage_plan.order:
            print(a)
        return 0
    if fetch_inputs(stage_plan, fetch=not args.no_fetch):
        stage_plan = plan(".", args.stages)
        fetch_inputs(stage_plan, fetch=False)  # what the fetch did not give stops the run here
    if stage_plan.up_to_date:
        print("every stage is up to date")
        return 0
    if args.task_cpus is None:
        args.task_cpus = task_cpus()
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
