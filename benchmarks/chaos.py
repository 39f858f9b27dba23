"""Kill stages of the embedded default with SIGKILL at random moments; check nothing is lost.

    python benchmarks/chaos.py [--kills 6] [--seed 0] [--targets digits] [--kinds ...]
    make chaos                      # the same, on every target of params.yaml, 10 kills

It works in a clone of the committed repository under build/chaos/ (your checkout, its
results and its dvc.lock are never touched), with copies of data/, build/data and
build/sources. For each chosen stage (kinds: search, amcf, baselines, ablations, report):

1. a clean run from empty training state (``dvc repro --force --single-item STAGE``), timed;
2. the training state is emptied again, the stage is started, and at a seeded random moment
   (a fraction of the clean run's time) its whole process tree (dvc, papermill, the
   notebook's kernel) gets SIGKILL, as a crash or the OOM killer would; a stage can be
   killed more than once;
3. the stage is rerun to completion (it resumes from what the killed runs saved).

The stage's results after the kills must equal those of the clean run, and the committed
ones, ignoring wall-clock timings (JSON keys and CSV columns about time; figures of cost).
It prints every kill, the kills survived and the time lost: the killed attempts plus the
resumed run, minus the clean run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

# run as a script from a checkout: benchmarks/ and scripts/ import from its root
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.same_results import comparable_text

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("search", "amcf", "baselines", "ablations", "report")


def _env() -> dict[str, str]:
    return dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(CLONE),
                PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


CLONE = ROOT / "build" / "chaos" / "repo"


def make_clone() -> None:
    """A clone of the committed repository with the inputs the stages read."""
    if CLONE.exists():
        shutil.rmtree(CLONE)
    subprocess.run(["git", "clone", "-q", str(ROOT), str(CLONE)], check=True)
    for rel in ("data", "build/data", "build/sources"):
        shutil.copytree(ROOT / rel, CLONE / rel, symlinks=False)


def stages(targets: list[str], kinds: list[str]) -> list[str]:
    out = []
    for kind in kinds:
        if kind == "report":
            out.append("report")
        else:
            out += [f"{kind}@{t}" for t in targets]
    return out


def _kill_tree(proc: subprocess.Popen) -> bool:
    """SIGKILL the process and all its descendants; True if it was still running."""
    try:
        parent = psutil.Process(proc.pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return False
    alive = proc.poll() is None
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(family, timeout=10)
    return alive


def attempt(stage: str, kill_after: float | None) -> tuple[float, bool]:
    """Run the stage; SIGKILL it after ``kill_after`` s. Returns (seconds, killed)."""
    log = CLONE.parent / "stage.log"
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(["dvc", "repro", "--force", "--single-item", stage],
                                cwd=CLONE, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            killed = _kill_tree(proc)
            return time.perf_counter() - start, killed
    if proc.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{log.read_text()[-3000:]}")
    return time.perf_counter() - start, False


def reset_state() -> None:
    """Empty the training state, so that a run really trains instead of reusing runs."""
    shutil.rmtree(CLONE / "build" / "work", ignore_errors=True)


# ---- what a stage produced, without timings ------------------------------------------------
def snapshot(root: Path) -> dict[str, object]:
    """Results and the paper's numbers, timings dropped (figures are not compared)."""
    files = [*root.glob("results/**/*"), *root.glob("paper/summary.json"),
             *root.glob("paper/generated/**/*.csv")]
    return {str(p.relative_to(root)): comparable_text(p) for p in sorted(files)
            if p.is_file() and p.suffix in (".json", ".csv", ".md")}


def committed_snapshot() -> dict[str, object]:
    out = {}
    listed = subprocess.run(["git", "ls-files", "results", "paper/summary.json",
                             "paper/generated"], cwd=CLONE, capture_output=True, text=True,
                            check=True).stdout.split()
    for rel in listed:
        path = Path(rel)
        if path.suffix in (".json", ".csv", ".md"):
            text = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=CLONE,
                                  capture_output=True, text=True, check=True).stdout
            out[rel] = comparable_text(path, text)
    return out


def _differences(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs in all (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of stages and moments")
    parser.add_argument("--targets", nargs="+", default=["digits"],
                        help="targets whose stages are killed, or 'all' (default: digits)")
    parser.add_argument("--kinds", nargs="+", default=["search", "amcf", "baselines", "report"],
                        choices=KINDS, help="stage kinds to kill")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    total_start = time.perf_counter()
    make_clone()
    targets = args.targets
    if targets == ["all"]:
        targets = list(yaml.safe_load((CLONE / "params.yaml").read_text())["targets"])
    chosen = stages(targets, args.kinds)
    if args.kills < len(args.kinds):
        parser.error(f"--kills must be at least {len(args.kinds)}: one per kind")
    # every kind killed at least once, the rest spread at random
    per_stage = {s: 0 for s in chosen}
    for kind in args.kinds:
        per_stage[rng.choice([s for s in chosen if s.split("@")[0] == kind])] += 1
    for _ in range(args.kills - len(args.kinds)):
        per_stage[rng.choice(chosen)] += 1
    committed = committed_snapshot()
    survived, lost, rows, problems, notes = 0, 0.0, [], [], []
    for stage in chosen:
        reset_state()
        clean, _ = attempt(stage, None)
        reference = snapshot(CLONE)
        reset_state()
        spent = 0.0
        for _ in range(per_stage[stage]):
            moment = rng.uniform(0.15, 0.85) * clean
            seconds, killed = attempt(stage, moment)
            spent += seconds
            survived += killed
            print(f"  {stage}: SIGKILL at {moment:5.1f} s of a {clean:5.1f} s run"
                  + ("" if killed else " (it had already finished)"), flush=True)
        seconds, _ = attempt(stage, None)
        spent += seconds
        after = snapshot(CLONE)
        differ = _differences(reference, after)
        stale = _differences(committed, {k: v for k, v in reference.items() if k in committed})
        lost += spent - clean
        rows.append((stage, per_stage[stage], clean, spent, spent - clean, not differ,
                     not stale))
        if differ:
            problems.append(f"{stage}: results differ from the uninterrupted run: {differ[:5]}")
        if stale:
            notes.append(f"{stage}: even the uninterrupted run differs from the committed "
                         f"results (they are stale, not damaged by a kill): {stale[:5]}")
    print("\n| stage | kills | clean run s | with kills s | time lost s | same as clean run "
          "| same as committed |")
    print("|---|---|---|---|---|---|---|")
    for stage, kills, clean, spent, extra, same, as_committed in rows:
        print(f"| {stage} | {kills} | {clean:.1f} | {spent:.1f} | {extra:.1f} | "
              f"{'yes' if same else 'NO'} | {'yes' if as_committed else 'no'} |")
    print(f"\nkills survived: {survived} of {args.kills} SIGKILLs "
          f"({args.kills - survived} came after the stage had finished); time lost: "
          f"{lost:.1f} s; chaos run took {time.perf_counter() - total_start:.0f} s")
    for note in notes:
        print("note:", note)
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
