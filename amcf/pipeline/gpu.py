"""Run the paper profile's independent stages concurrently, one GPU each.

DVC runs the stages of a pipeline one at a time (upstream issue #755) and holds the
repository lock while a stage runs, so two ``dvc repro`` processes cannot share a repo.
This runner asks DVC which stages are out of date and how they depend on each other, then
runs each ready stage's own command in a subprocess with ``CUDA_VISIBLE_DEVICES`` set to a
free GPU, and records the finished stage with ``dvc commit`` (a short lock, retried while
another commit holds it). A final ``dvc status`` shows the pipeline up to date, exactly as
if ``dvc repro`` had run the stages itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOCK_MARKERS = ("Unable to acquire lock", "is locked", "LockError")


@dataclass
class Plan:
    """Stages to run (in a topological order) and, for each, the stages it waits for."""

    order: list[str]
    cmds: dict[str, list[str]]
    waits_for: dict[str, set[str]] = field(default_factory=dict)


def plan(repo_root: str | os.PathLike = ".", targets: Sequence[str] = ()) -> Plan:
    """The out-of-date stages (of ``targets`` and their ancestors, or of all) and their edges."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(os.fspath(repo_root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        stages = {s.addressing: s for s in repo.index.stages if getattr(s, "cmd", None)}
        wanted = set(stages)
        if targets:
            wanted = set()
            for t in targets:
                matched = [a for a in stages if a == t or a.split("@")[0] == t]
                if not matched:
                    raise SystemExit(f"no stage named {t!r}; see `dvc stage list`")
                for a in matched:
                    wanted.add(a)
                    wanted |= {d.addressing for d in nx.descendants(graph, stages[a])}
        with repo.lock:
            stale = {a for a in wanted if stages[a].changed()}
        # a stage downstream of a stale one is stale too, whatever its own status says
        for a in list(stale):
            stale |= {
                u.addressing for u in nx.ancestors(graph, stages[a]) if u.addressing in wanted
            }
        order = [
            s.addressing for s in reversed(list(nx.topological_sort(graph)))
            if s.addressing in stale
        ]
        cmds = {a: _as_list(stages[a].cmd) for a in order}
        waits = {
            a: {d.addressing for d in graph.successors(stages[a])} & stale for a in order
        }
    return Plan(order, cmds, waits)


def _as_list(cmd: str | list[str]) -> list[str]:
    return [cmd] if isinstance(cmd, str) else list(cmd)


def commit(stage: str, *, retries: int = 120, delay: float = 1.0) -> None:
    """``dvc commit -f stage``, retried while another process holds DVC's lock."""
    for _ in range(retries):
        proc = subprocess.run(["dvc", "commit", "-f", "-q", stage], capture_output=True,
                              text=True)
        if proc.returncode == 0:
            return
        if not any(m in proc.stderr + proc.stdout for m in LOCK_MARKERS):
            raise RuntimeError(f"dvc commit {stage} failed:\n{proc.stderr}")
        time.sleep(delay)
    raise RuntimeError(f"dvc commit {stage}: the DVC lock stayed taken for {retries * delay} s")


def run(stage_plan: Plan, gpus: Sequence[str], *, log_dir: Path, dry: bool = False) -> list[str]:
    """Run the plan with at most one stage per GPU; return the stages in completion order."""
    if not gpus:
        raise ValueError("give at least one GPU id, e.g. --gpus 0,1,2,3")
    if dry:
        for a in stage_plan.order:
            print(a)
        return []
    log_dir.mkdir(parents=True, exist_ok=True)
    pending = list(stage_plan.order)
    running: dict[str, tuple[subprocess.Popen, str]] = {}
    done: list[str] = []
    free = list(gpus)
    while pending or running:
        for a in [a for a in pending if stage_plan.waits_for[a] <= set(done)]:
            if not free:
                break
            gpu = free.pop(0)
            env = dict(os.environ, CUDA_VISIBLE_DEVICES=str(gpu))
            log = open(log_dir / f"{a.replace('@', '--')}.log", "w")  # noqa: SIM115
            script = " && ".join(stage_plan.cmds[a])
            running[a] = (subprocess.Popen(script, shell=True, env=env, stdout=log,
                                           stderr=subprocess.STDOUT), gpu)
            pending.remove(a)
            print(f"[gpu {gpu}] start {a}", flush=True)
        for a, (proc, gpu) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[a]
            free.append(gpu)
            if proc.returncode != 0:
                for other, _ in running.values():
                    other.wait()
                raise RuntimeError(f"stage {a} failed (exit {proc.returncode}); see "
                                   f"{log_dir / (a.replace('@', '--') + '.log')}")
            commit(a)
            done.append(a)
            print(f"[gpu {gpu}] done  {a}", flush=True)
        time.sleep(0.2)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="amcf gpu-run", description="Run out-of-date DVC stages concurrently, one per GPU."
    )
    parser.add_argument("targets", nargs="*", help="stages or stage groups (default: all)")
    parser.add_argument("--gpus", required=True, help="comma-separated GPU ids, e.g. 0,1,2,3")
    parser.add_argument("--logs", default="build/logs", help="one log file per stage here")
    parser.add_argument("--dry", action="store_true", help="list the stages that would run")
    args = parser.parse_args(argv)
    stage_plan = plan(".", args.targets)
    if not stage_plan.order:
        print("every stage is up to date")
        return 0
    run(stage_plan, [g for g in args.gpus.split(",") if g], log_dir=Path(args.logs),
        dry=args.dry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
