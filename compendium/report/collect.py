"""Read the pipeline's result tree into one tidy table.

Layout (contract with the pipeline)::

    results/<target>/<method>/seed<k>/metrics.json   (+ history.csv, test_predictions.csv)
    results/<target>/<group>/<method>/seed<k>/...    (the same, one level down: the runs of one
                                                      pipeline stage, e.g. baselines, ablations)
    results/<target>/searches.json                   (the AMLS searches of that target, one
                                                      per search seed; or, older, one search
                                                      in results/<target>/search.json)
    results/<target>/[<group>/]<method>/search.json  (optional: a method's own search, e.g. ALS)
    results/timings.csv                              (optional: wall times, see compendium.timings;
                                                      a search's row is <target>/search[/seed<k>]
                                                      or <target>/<group>/<method>/search[...])
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from compendium.methods import method_info
from compendium.timings import current_wall_times, read_summary

METRIC_KEYS = (
    "selected_epoch",
    "val_acc",
    "test_acc",
    "best_test_acc",
    "final_test_acc",
    "epochs",
    "num_models",
    "model_epochs",
    "trainable_params",
)
COLUMNS = ("target", "method", "seed", "label", "family", "single_source", "order",
           *METRIC_KEYS, "wall_time_s", "device", "numerics", "search_evaluations",
           "search_model_epochs",
           "search_wall_time_s", "total_model_epochs", "total_wall_time_s")
# the methods that train with the target's searched AMLS scheme, so the search is part of
# their cost (amcf-full and amcf-random replace the scheme and need no search)
SEARCHED_SCHEME = re.compile(r"(amcf|amcf-select|amcf-lam.+|amcf-k.+|amcf-dml)\Z")
_SEED_DIR = re.compile(r"seed(\d+)\Z")


def _read_metrics(path: Path) -> dict:
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); delete it and re-run the stage that writes it"
        ) from err
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise ValueError(
            f"{path} lacks {missing}: it was written by an older trainer; re-run that stage"
        )
    return metrics


def _read_searches(path: Path) -> list[dict]:
    """The searches in a ``searches.json`` ({"searches": [...]}) or a one-search
    ``search.json``, each with its ``seed``, sorted by seed."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if "searches" in data:
        searches = [dict(s) for s in data["searches"]]
        if not searches:
            raise ValueError(f"{path} lists no searches; re-run the search stage")
        for search in searches:  # each search's calls are in its own search.json beside
            own = path.parent / "searches" / f"seed{search.get('seed', 0)}" / "search.json"
            if "history" not in search and own.is_file():
                search["history"] = json.loads(own.read_text(encoding="utf-8"))["history"]
    else:
        seed = data.get("settings", {}).get("seed", 0)
        searches = [{**data, "seed": seed}]
    return sorted(searches, key=lambda s: int(s.get("seed", 0)))


def _search_file(root: Path, target: str, method: str) -> Path | None:
    """The search behind a method's scheme: its own, else the target's AMLS search for the
    methods that train with the searched scheme; None when it has none."""
    base = root / target
    own = [base / method / "search.json", *sorted(base.glob(f"*/{method}/search.json"))]
    shared = [base / "searches.json", base / "search.json"] if SEARCHED_SCHEME.match(method) \
        else []
    return next((p for p in [*own, *shared] if p.is_file()), None)


def search_for_seed(searches: list[dict], seed: int) -> dict:
    """The search whose scheme training seed ``seed`` used: search seed ``seed mod n``."""
    wanted = seed % len(searches)
    return next((s for s in searches if int(s.get("seed", 0)) == wanted), searches[wanted])


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


def _search_wall_time(timings: dict, root: Path, search_path: Path, seed: int) -> float:
    """The search's wall time from timings.csv (NaN when it was not timed)."""
    rel = search_path.parent.relative_to(root).as_posix()
    for run in (f"{rel}/search/seed{seed}", f"{rel}/search"):
        if run in timings:
            return float(timings[run]["wall_time_s"])
    return float("nan")


def search_evaluations(results_dir: str | os.PathLike, target: str, method: str,
                       seed: int = 0) -> int | None:
    """Fitness trainings (cache misses) behind a method's layer scheme for training seed
    ``seed``, or None if it has none."""
    path = _search_file(Path(results_dir), target, method)
    if path is None:
        return None
    return int(search_for_seed(_read_searches(path), seed)["evaluations"])


def _search_cost(root: Path, target: str, method: str, seed: int, timings: dict) -> dict:
    path = _search_file(root, target, method)
    if path is None:
        return {"search_evaluations": None, "search_model_epochs": 0.0,
                "search_wall_time_s": 0.0}
    search = search_for_seed(_read_searches(path), seed)
    return {"search_evaluations": int(search["evaluations"]),
            "search_model_epochs": search_model_epochs(search),
            "search_wall_time_s": _search_wall_time(timings, root, path,
                                                    int(search.get("seed", 0)))}


def _final_test_acc(metrics: dict, run: Path) -> float:
    """The last epoch's test accuracy; a member published from a joint run leaves it null,
    and then it is the last row of the joint history's column for that member (NaN when
    there is no history)."""
    if metrics.get("final_test_acc") is not None:
        return float(metrics["final_test_acc"])
    history = run / "history.csv"
    member = metrics.get("history_member")
    column = "test_acc" if member is None else f"test_acc_m{member}"
    if not history.is_file():
        return float("nan")
    frame = pd.read_csv(history)
    return float(frame[column].iloc[-1]) if column in frame and len(frame) else float("nan")


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
    timings = read_summary(root)
    found = [*root.glob("*/*/seed*/metrics.json"), *root.glob("*/*/*/seed*/metrics.json")]
    for path in sorted(found):
        seed_match = _SEED_DIR.match(path.parent.name)
        if not seed_match:
            continue
        method, target = path.parent.parent.name, path.relative_to(root).parts[0]
        info = method_info(method)
        metrics = _read_metrics(path)
        metrics["final_test_acc"] = _final_test_acc(metrics, path.parent)
        seed = int(seed_match.group(1))
        cost = _search_cost(root, target, method, seed, timings)
        wall = wall_times.get(path.parent.relative_to(root).as_posix(), float("nan"))
        rows.append(
            {
                "target": target,
                "method": method,
                "seed": seed,
                "label": info.label,
                "family": info.family,
                "single_source": info.single_source,
                "order": info.order,
                **{k: metrics[k] for k in METRIC_KEYS},
                "wall_time_s": wall,
                "device": metrics.get("device", ""),
                "numerics": metrics.get("numerics", ""),
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


def run_dir(results_dir: str | os.PathLike, target: str, method: str, seed: int) -> Path:
    """Directory of one run; raises a clear error when it is absent."""
    root = Path(results_dir) / target
    grouped = sorted(root.glob(f"*/{method}/seed{seed}"))
    path = root / method / f"seed{seed}" if not grouped else grouped[0]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist; run {method} on {target}, seed {seed}")
    return path
