"""``pretrain@<source>``: one source model trained on its source dataset, saved as an amcf
checkpoint, with its metrics, history, training curves and layer table."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from amcf.datasets import Splits
from amcf.layers import layer_table
from amcf.models.build import SourceSpec, build_model
from amcf.models.checkpoint import save_checkpoint
from amcf.objective import MCLoss
from amcf.train.config import TrainConfig
from amcf.train.fit import fit
from compendium import results, timings
from compendium.data.prepared import load_splits
from compendium.plots.curves import plot_training_curves
from compendium.stages.runs import check_device, seeded
from compendium.stages.runs import work_dir as run_work_dir


def pretrain_source(name: str, splits: Splits, arch: str, init: str | None,
                    train: TrainConfig, checkpoint: str | os.PathLike,
                    results_dir: str | os.PathLike, work_dir: str | os.PathLike,
                    timings_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train one source model on its source dataset and save it as an amcf checkpoint.

    ``init`` is where its weights start: None (random), "hub" (timm's pretrained weights,
    e.g. the paper's ImageNet ResNet-50 before CIFAR-100) or a checkpoint file. The model of
    the last epoch is saved, as a source model is a starting point, not a selected result.
    The wall time is recorded as run ``sources/<name>`` (the pipeline's
    ``results/sources/<name>``) under ``timings_dir`` (default: beside ``work_dir``).
    """
    spec = SourceSpec(name=name, arch=arch, weights=init)
    with seeded(train.seed):
        model = build_model(spec, splits.num_classes, in_chans=splits.in_chans)
    objective = MCLoss(lam=0.0)
    work = run_work_dir(Path(work_dir) / "pretrain", name, train.seed, train, splits, [model],
                        objective)
    result = fit([model], splits, train, objective, out_dir=work)
    save_checkpoint(model.cpu(), checkpoint, arch=arch, classes=splits.classes,
                    in_chans=splits.in_chans,
                    meta={"dataset": splits.name, "epochs": train.epochs,
                          "test_acc": result.metrics["final_test_acc"]})
    return results.publish_source(
        results_dir, name, splits.name, result,
        timings_dir if timings_dir is not None else timings.default_timings_dir(work_dir))


def pretrain_stage(source: str, dataset: str, arch: str, init: str | None,
                   train: Mapping[str, Any], prepared_dir: str | os.PathLike,
                   checkpoint: str | os.PathLike, results_dir: str | os.PathLike,
                   work_dir: str | os.PathLike) -> dict[str, Any]:
    """The whole ``pretrain@<source>`` stage: train and save the source, then draw its
    curves and write its layer table (``layers.json``). Returns its metrics."""
    check_device(f"pretrain@{source}", train)  # it trains in this process
    splits = load_splits(dataset, prepared_dir)
    config = TrainConfig(progress=False, **train)
    metrics = pretrain_source(source, splits, arch, init, config, checkpoint, results_dir,
                              work_dir)
    out = Path(results_dir)
    plot_training_curves(results.history_frame(out), out / "curves",
                         title=f"pretraining {source} on {dataset}")
    model = build_model(SourceSpec(name=source, arch=arch, weights=checkpoint),
                        splits.num_classes)
    results.write_layers(out, source, arch, [row.__dict__ for row in layer_table(model)])
    return metrics
