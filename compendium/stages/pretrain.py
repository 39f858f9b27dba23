"""``pretrain@<source>``: a source model trained on its source dataset, once per draw (its own
seed), each saved as an amcf checkpoint with its metrics, history and training curves; and
the source's layer table."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
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
from compendium.pipeline.fanout import ends_local_workers, run_all
from compendium.plots.curves import plot_training_curves
from compendium.stages.runs import check_device, seeded
from compendium.stages.runs import work_dir as run_work_dir


def pretrain_source(name: str, splits: Splits, arch: str, init: str | None,
                    train: TrainConfig, checkpoint: str | os.PathLike,
                    results_dir: str | os.PathLike, work_dir: str | os.PathLike,
                    timings_dir: str | os.PathLike | None = None,
                    draw: int = 0) -> dict[str, Any]:
    """Train one source model on its source dataset and save it as an amcf checkpoint.

    ``init`` is where its weights start: None (random), "hub" (timm's pretrained weights,
    e.g. the paper's ImageNet ResNet-50 before CIFAR-100) or a checkpoint file. The model of
    the last epoch is saved, as a source model is a starting point, not a selected result.
    ``results_dir`` is where it publishes (the pipeline's
    ``results/<profile>/sources/<name>/draws/draw<d>``); the wall time is recorded under
    ``timings_dir`` (default: beside ``work_dir``) as that run.
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
        timings_dir if timings_dir is not None else timings.default_timings_dir(work_dir),
        draw=draw)


def draw_checkpoint(checkpoint_dir: str | os.PathLike, draw: int) -> Path:
    """Where ``pretrain@<source>`` saves its draw ``draw`` (``amcf.sources.<name>.weights``
    lists these, one per draw)."""
    return Path(checkpoint_dir) / f"draw{draw}.pt"


def _pretrain_draw(source: str, dataset: str, arch: str, init: str | None,
                   config: TrainConfig, draw: int, prepared_dir: str | os.PathLike,
                   checkpoint_dir: str | os.PathLike, results_dir: str | os.PathLike,
                   work_dir: str | os.PathLike) -> dict[str, Any]:
    """Draw ``draw`` of the source: trained under seed ``train.seed + draw``, saved as
    :func:`draw_checkpoint`, published in :func:`compendium.results.source_draw_dir` with
    its curves."""
    splits = load_splits(dataset, prepared_dir)
    out = results.source_draw_dir(results_dir, draw)
    metrics = pretrain_source(source, splits, arch, init,
                              config.model_copy(update={"seed": config.seed + draw}),
                              draw_checkpoint(checkpoint_dir, draw), out, work_dir,
                              draw=draw)
    plot_training_curves(results.history_frame(out), out / "curves",
                         title=f"pretraining {source} on {dataset}, draw {draw}")
    return metrics


@ends_local_workers
def pretrain_stage(source: str, dataset: str, arch: str, init: str | None,
                   train: Mapping[str, Any], prepared_dir: str | os.PathLike,
                   checkpoint_dir: str | os.PathLike, results_dir: str | os.PathLike,
                   work_dir: str | os.PathLike, draws: int = 1) -> list[dict[str, Any]]:
    """The whole ``pretrain@<source>`` stage: ``draws`` trainings of the source, each under
    its own seed (``train.seed + d``) and side by side, saved as ``checkpoint_dir/draw<d>.pt``
    with their curves; then its layer table (``layers.json``, the same for every draw) and
    every draw's accuracies (``draws.json``).
    Training seed s of a target uses draw s mod ``draws``
    (:func:`compendium.stages.runs.draw_for_seed`). Returns each draw's metrics."""
    if draws < 1:
        raise ValueError(f"pretrain.{source}.draws must be >= 1, got {draws}")
    check_device(f"pretrain@{source}", train)  # it trains in this process, or its workers
    splits = load_splits(dataset, prepared_dir)  # a missing dataset stops before any training
    config = TrainConfig(progress=False, **train)
    # on a cluster this stage is itself a Ray task holding a GPU: its draws train in turn
    found = run_all([partial(_pretrain_draw, source, dataset, arch, init, config, d,
                             prepared_dir, checkpoint_dir, results_dir, work_dir)
                     for d in range(draws)], tasks=False)
    model = build_model(SourceSpec(name=source, arch=arch,
                                   weights=str(draw_checkpoint(checkpoint_dir, 0))),
                        splits.num_classes)
    results.write_layers(results_dir, source, arch, [row.__dict__ for row in layer_table(model)])
    results.write_source_draws(results_dir, source, dataset, found,
                               seeds=[config.seed + d for d in range(draws)])
    return found
