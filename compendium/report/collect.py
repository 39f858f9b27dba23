"""Read the pipeline's result tree (layout: :mod:`compendium.results`) into one tidy table:
one row per (target, method, seed), with the method's label and family from the method
registry, its wall time from the committed ``timings.csv`` (:mod:`compendium.timing_summary`; a
search's row is ``<target>/search[/seed<k>]`` or ``<target>/<group>/<method>/search[...]``),
and the cost of the search behind its scheme.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from compendium import results
from compendium.methods.registry import method_info
from compendium.timing_summary import current_wall_times

METRIC_KEYS = results.METRIC_KEYS
COLUMNS = ("target", "method", "seed", "label", "family", "single_source", "order",
           *METRIC_KEYS, "wall_time_s", "device", "numerics", "shots", "train_images",
           "search_evaluations",
           "search_model_epochs",
           "search_wall_time_s", "total_model_epochs", "total_wall_time_s")


def _search_file(root: Path, target: str, method: str) -> Path | None:
    """The search behind a method's scheme: its own, else the target's AMLS search for the
    methods that train with the searched scheme; None when it has none."""
    base = root / target
    own = [base / method / "search.json", *sorted(base.glob(f"*/{method}/search.json"))]
    # the target's AMLS searches, for the methods that train with the searched scheme (their
    # entry's `searched`; amcf-full and amcf-random replace the scheme and need no search)
    shared = ([base / "searches.json", base / "search.json"] if method_info(method).searched
              else [])
    return next((p for p in [*own, *shared] if p.is_file()), None)


def search_model_epochs(search: dict) -> float:
    """Model-epochs the search trained: as recorded, else distinct trainings x fitness epochs
    x models per training (NaN when the search file says neither)."""
    if search.get("model_epochs") is not None:
        return float(search["model_epochs"])
    settings = search.get("settings", {})
    epochs = settings.get("context", {}).get("train", {}).get("epochs")
    dims = settings.get("dims", len(search.get("best", [])))
    if epochs is None or "evaluations" not in search:
        return float("nan")
    return float(search["evaluations"]) * float(epochs) * float(dims)


def _search_wall_time(wall_times: dict[str, float], root: Path, search_path: Path,
                      seed: int) -> float:
    """The search's wall time from timings.csv, while its row still matches the committed
    search (NaN when it was not timed)."""
    rel = search_path.parent.relative_to(root).as_posix()
    for run in (f"{rel}/search/seed{seed}", f"{rel}/search"):
        if run in wall_times:
            return wall_times[run]
    return float("nan")


def search_evaluations(results_dir: str | os.PathLike, target: str, method: str,
                       seed: int = 0) -> int | None:
    """Fitness trainings (cache misses) behind a method's layer scheme for training seed
    ``seed``, or None if it has none."""
    path = _search_file(Path(results_dir), target, method)
    if path is None:
        return None
    return int(results.search_for_seed(results.read_searches(path), seed)["evaluations"])


def _search_cost(root: Path, target: str, method: str, seed: int,
                 wall_times: dict[str, float]) -> dict:
    path = _search_file(root, target, method)
    if path is None:
        return {"search_evaluations": None, "search_model_epochs": 0.0,
                "search_wall_time_s": 0.0}
    search = results.search_for_seed(results.read_searches(path), seed)
    return {"search_evaluations": int(search["evaluations"]),
            "search_model_epochs": search_model_epochs(search),
            "search_wall_time_s": _search_wall_time(wall_times, root, path,
                                                    int(search.get("seed", 0)))}


def collect(results_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per (target, method, seed): accuracies, paper-protocol accuracy and cost.

    ``wall_time_s`` comes from the committed ``timings.csv`` (NaN for a run it does not time).
    ``total_*`` add the cost of the search behind the run's scheme (the seed's AMLS search
    for AMCF and the ablations that keep its scheme, ALS's own genetic search); a search
    without a timing makes the total wall time NaN rather than understate it.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"results directory {root} does not exist; run the pipeline (`dvc repro`) first "
            "or pass the directory that holds <target>/<method>/seed<k>/metrics.json"
        )
    rows = []
    wall_times = current_wall_times(root)
    for target, method, seed, path in results.metrics_files(root):
        info = method_info(method)
        metrics = results.read_metrics(path)
        metrics["final_test_acc"] = results.final_test_acc(metrics, path.parent)
        cost = _search_cost(root, target, method, seed, wall_times)
        wall = wall_times.get(path.parent.relative_to(root).as_posix(), float("nan"))
        rows.append(
            {
                "target": target,
                "method": method,
                "seed": seed,
                "label": info.label,
                "family": info.family,
                "single_source": info.reference,
                "order": info.order,
                **{k: metrics[k] for k in METRIC_KEYS},
                "wall_time_s": wall,
                "device": metrics.get("device", ""),
                "numerics": metrics.get("numerics", ""),
                # what the run trained on (runs of older results do not say)
                "shots": metrics.get("shots"),
                "train_images": metrics.get("train_images"),
                **cost,
                "total_model_epochs": metrics["model_epochs"] + cost["search_model_epochs"],
                "total_wall_time_s": wall + cost["search_wall_time_s"],
            }
        )
    if not rows:
        raise FileNotFoundError(
            f"no results under {root}: expected <target>/<method>/seed<k>/metrics.json; "
            "run the training stages first"
        )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["search_evaluations"] = frame["search_evaluations"].astype("Int64")
    return frame.sort_values(["target", "order", "method", "seed"], ignore_index=True)
