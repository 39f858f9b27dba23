"""A training stage's own runs on one target, read back from the results tree: the frame its
figure draws and the headline numbers it publishes (``<target>/<group>-summary.json``).

Only the stage's own folder is read: the other stages' results lie beside it but are no
dependency of the stage, so using them would let its outputs depend on the order in which
``dvc repro`` happens to run the stages.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from compendium import results
from compendium.methods.entry import Method, method_info
from compendium.seedstats import mean_std

if TYPE_CHECKING:  # pandas loads when a frame is built: the stages' workers build none
    import pandas as pd

# a stage group -> its folder under results/<target>/ (amcf@ publishes at the top)
GROUP_FOLDERS = {"amcf": "", "baselines": "baselines", "ablations": "ablations"}
COLUMNS = ("target", "method", "seed", "val_acc", "test_acc", "best_test_acc", "model_epochs")


def group_frame(results_dir: str | os.PathLike, target: str, group: str,
                entries: Sequence[Method] = ()) -> pd.DataFrame:
    """One row per run of the stage group on ``target`` (sorted by method, then seed); with
    the group's ``entries``, each method's label, family and table order too."""
    import pandas as pd

    if group not in GROUP_FOLDERS:
        raise ValueError(f"group must be one of {sorted(GROUP_FOLDERS)}, got {group!r}")
    rows = []
    for run_target, method, seed, path in results.metrics_files(results_dir, target,
                                                                GROUP_FOLDERS[group]):
        metrics = results.read_metrics(path)
        row = {"target": run_target, "method": method, "seed": seed,
               **{k: metrics[k] for k in COLUMNS[3:]}}
        if entries:
            info = method_info(method, entries)
            row.update(label=info.label, family=info.family, order=info.order)
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no {group} runs of {target} under {results_dir}; run them "
                                "first")
    return pd.DataFrame(rows).sort_values(["method", "seed"], ignore_index=True)


def group_summary(frame: pd.DataFrame) -> dict[str, dict]:
    """Per method of a :func:`group_frame`: mean test accuracy over seeds, the seeds, their
    spread (None for one seed), the mean best-over-epochs accuracy and the model-epochs."""
    summary = {}
    for method, runs in frame.groupby("method"):
        acc = mean_std(runs["test_acc"])
        summary[method] = {"test_acc": acc.mean, "seeds": acc.n,
                           "test_acc_std": acc.std if acc.n > 1 else None,
                           # None where a run read the test split at selected epochs only
                           "best_test_acc": (float(runs["best_test_acc"].mean())
                                             if runs["best_test_acc"].notna().all() else None),
                           "model_epochs": float(runs["model_epochs"].mean())}
    return summary


def write_group_summary(results_dir: str | os.PathLike, target: str, group: str,
                        frame: pd.DataFrame | None = None) -> Path:
    """Write the stage's headline numbers (a DVC metric) from its runs (``frame``: its
    :func:`group_frame`, read now when None)."""
    frame = group_frame(results_dir, target, group) if frame is None else frame
    return results.write_group_summary(results_dir, target, group, group_summary(frame))
