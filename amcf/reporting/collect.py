"""Read the pipeline's result tree into one tidy table.

Layout (contract with the pipeline)::

    results/<target>/<method>/seed<k>/metrics.json   (+ history.csv, test_predictions.csv)
    results/<target>/<group>/<method>/seed<k>/...    (the same, one level down: the runs of one
                                                      pipeline stage, e.g. baselines, ablations)
    results/<target>/search.json                     (the AMLS search of that target)
    results/<target>/[<group>/]<method>/search.json  (optional: a method's own search, e.g. ALS)
    results/timings.csv                              (optional: wall times, see amcf.timings)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from amcf.methods import method_info
from amcf.timings import current_wall_times

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
           *METRIC_KEYS, "wall_time_s", "device", "search_evaluations")
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


def search_evaluations(results_dir: str | os.PathLike, target: str, method: str) -> int | None:
    """Fitness trainings (cache misses) behind a method's layer scheme, or None if it has none.

    AMCF owns the target's search (``results/<target>/search.json``); any method may carry its
    own (``results/<target>/<method>/search.json``).
    """
    root = Path(results_dir) / target
    candidates = [root / method / "search.json", *root.glob(f"*/{method}/search.json")]
    if method == "amcf":
        candidates.append(root / "search.json")
    for path in candidates:
        if path.is_file():
            return int(json.loads(path.read_text(encoding="utf-8"))["evaluations"])
    return None


def collect(results_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per (target, method, seed): accuracies, paper-protocol accuracy and cost.

    ``wall_time_s`` comes from the committed ``timings.csv`` (NaN for a run it does not time).
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"results directory {root} does not exist; run the pipeline (`dvc repro`) first "
            "or pass the directory that holds <target>/<method>/seed<k>/metrics.json"
        )
    rows = []
    wall_times = current_wall_times(root)
    found = [*root.glob("*/*/seed*/metrics.json"), *root.glob("*/*/*/seed*/metrics.json")]
    for path in sorted(found):
        seed_match = _SEED_DIR.match(path.parent.name)
        if not seed_match:
            continue
        method, target = path.parent.parent.name, path.relative_to(root).parts[0]
        info = method_info(method)
        metrics = _read_metrics(path)
        rows.append(
            {
                "target": target,
                "method": method,
                "seed": int(seed_match.group(1)),
                "label": info.label,
                "family": info.family,
                "single_source": info.single_source,
                "order": info.order,
                **{k: metrics[k] for k in METRIC_KEYS},
                "wall_time_s": wall_times.get(path.parent.relative_to(root).as_posix(),
                                              float("nan")),
                "device": metrics.get("device", ""),
                "search_evaluations": search_evaluations(root, target, method),
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
