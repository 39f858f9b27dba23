"""Where a pipeline stage's wall time goes, read from what the pipeline already leaves behind.

Every stage is a notebook executed by papermill, which records in the executed notebook
(``build/notebooks/<stage>.ipynb``) when it started and ended and how long each cell ran.
Training and evaluation arithmetic is the time inside :func:`amcf.train.fit`'s epochs: the
``wall_time_s`` of every run whose ``metrics.json`` the stage wrote into its work directory
(written between the notebook's start and end). The search trains without a work directory;
for it, the cells that call the trainer stand for training (an upper bound, so its overhead
share is a lower bound). Two costs lie outside the notebook: starting ``amcf notebook`` (a
Python process importing papermill) and DVC's per-stage bookkeeping; :func:`launch_cost`
measures the first once, and the second is taken as ``dvc status``'s wall time divided by the
number of stages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

# cells whose work is training (used when a stage leaves no per-run record)
# (a stage notebook calls its stage's function, which also draws the stage's figures: an upper
# bound of the training, as the label says)
TRAINER_CALLS = ("run_search(", "run_searches(", "run_amls(", "run_amcf(", "partial(run_amcf",
                 "run_baselines(", "run_ablations(", "pretrain_source(", "fit(",
                 "search_stage(", "amcf_stage(", "baselines_stage(", "ablations_stage(",
                 "pretrain_stage(")


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _fit_seconds(work_dir: Path, start: float, end: float) -> float | None:
    """Summed wall_time_s of the fit runs that finished inside [start, end] (None: none)."""
    total, found = 0.0, False
    for path in work_dir.rglob("metrics.json"):
        mtime = path.stat().st_mtime
        if start <= mtime <= end + 1.0:
            try:
                seconds = json.loads(path.read_text()).get("wall_time_s")
            except (OSError, ValueError):
                continue
            if isinstance(seconds, int | float):
                total += seconds
                found = True
    return total if found else None


def notebook_cost(path: Path, work_dir: Path) -> dict[str, Any] | None:
    """One executed stage notebook: total, kernel, imports and training seconds."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    meta = nb.get("metadata", {}).get("papermill", {})
    if meta.get("duration") is None or meta.get("exception"):
        return None
    code = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    durations = [c.get("metadata", {}).get("papermill", {}).get("duration") or 0.0
                 for c in code]
    tags = [set(c.get("metadata", {}).get("tags", [])) for c in code]
    sources = ["".join(c.get("source", "")) for c in code]
    body = [i for i, t in enumerate(tags) if not t & {"parameters", "injected-parameters"}]
    imports = body[0] if body and "import" in sources[body[0]] else None
    total = float(meta["duration"])
    cells = sum(durations)
    fits = _fit_seconds(work_dir, _when(meta["start_time"]), _when(meta["end_time"]))
    training_from = "fit records"
    if fits is None:
        trainer = [i for i in body if any(call in sources[i] for call in TRAINER_CALLS)]
        fits = sum(durations[i] for i in trainer)
        training_from = "trainer cells (upper bound)" if trainer else "none (no training)"
    return {"notebook_s": total, "kernel_s": max(total - cells, 0.0),
            "imports_s": durations[imports] if imports is not None else 0.0,
            "training_s": min(fits, cells), "training_from": training_from}


def launch_cost() -> float:
    """Seconds to start the ``amcf notebook`` process up to papermill's own start."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import papermill, compendium.pipeline.notebook"],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def dvc_cost_per_stage(repo: Path = Path(".")) -> float | None:
    """``dvc status`` over the whole pipeline divided by its number of stages."""
    start = time.perf_counter()
    try:
        listing = subprocess.run([sys.executable, "-m", "dvc", "stage", "list", "--name-only"],
                                 cwd=repo, capture_output=True, text=True, timeout=120)
        subprocess.run([sys.executable, "-m", "dvc", "status", "--quiet"], cwd=repo,
                       capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    n = len(listing.stdout.split())
    if listing.returncode != 0 or n == 0:
        return None
    # the listing repeats dvc's start-up, which `dvc repro` pays once: count it once
    return (time.perf_counter() - start) / 2 / n


def stage_costs(notebooks: str | Path = "build/notebooks", work_dir: str | Path = "build/work",
                *, measure: bool = True) -> dict[str, Any]:
    """Per stage kind: stages found, mean seconds, and the share spent outside training."""
    notebooks, work_dir = Path(notebooks), Path(work_dir)
    launch = launch_cost() if measure else 0.0
    dvc = (dvc_cost_per_stage() if measure else None) or 0.0
    kinds: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(notebooks.glob("*.ipynb")):
        cost = notebook_cost(path, work_dir)
        if cost is not None:
            kinds.setdefault(path.stem.split("-")[0], []).append(cost)
    out: dict[str, Any] = {"source": f"papermill timings in {notebooks}/ and fit records in "
                                     f"{work_dir}/; launch and DVC measured now",
                           "notebooks": str(notebooks), "launch_s": launch,
                           "dvc_per_stage_s": dvc, "kinds": {}}
    all_total = all_outside = 0.0
    for kind, costs in kinds.items():
        total = sum(c["notebook_s"] for c in costs) + len(costs) * (launch + dvc)
        training = sum(c["training_s"] for c in costs)
        out["kinds"][kind] = {
            "stages": len(costs), "mean_stage_s": total / len(costs),
            "kernel_s": sum(c["kernel_s"] for c in costs) / len(costs),
            "imports_s": sum(c["imports_s"] for c in costs) / len(costs),
            "training_s": training / len(costs),
            "outside_share": 1 - training / total if total else None,
            "training_from": sorted({c["training_from"] for c in costs}),
        }
        all_total += total
        all_outside += total - training
    out["outside_share"] = all_outside / all_total if all_total else None
    return out


def render_stages(stages: dict[str, Any]) -> list[str]:
    lines = [f"per-stage cost (launch {stages['launch_s']:.1f} s + DVC "
             f"{stages['dvc_per_stage_s']:.2f} s per stage; {stages['source']}):",
             f"{'kind':12s}{'stages':>7s}{'mean s':>8s}{'kernel':>8s}{'imports':>8s}"
             f"{'training':>9s}{'outside':>9s}"]
    for kind, k in stages["kinds"].items():
        share = "-" if k["outside_share"] is None else f"{100 * k['outside_share']:.0f} %"
        lines.append(f"{kind:12s}{k['stages']:7d}{k['mean_stage_s']:8.1f}{k['kernel_s']:8.1f}"
                     f"{k['imports_s']:8.1f}{k['training_s']:9.1f}{share:>9s}")
    if stages["outside_share"] is not None:
        lines.append(f"all stages found: {100 * stages['outside_share']:.0f} % of the wall time "
                     "outside training and evaluation")
    else:
        lines.append(f"no executed stage notebooks in {stages['notebooks']}: run `dvc repro` "
                     "first")
    return lines
