"""``amcf@<target>``: AMCF on every seed, each with the scheme of its search, and amcf-select
from the same trainings; the stage's summary and the first seed's figures."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch

from amcf.models.build import build_frozen
from amcf.objective import MCLoss
from amcf.source_selection import SubsetSelection
from amcf.train.config import TrainConfig
from amcf.train.fit import TrainResult, fit
from amcf.train.records import write_predictions
from compendium import results
from compendium.data.prepared import load_splits
from compendium.pipeline.fanout import attached, ends_local_workers, run_all
from compendium.stages.runs import (
    Setting,
    check_device,
    publish,
    seeded,
    source_fields,
    work_dir,
)
from compendium.summaries import write_group_summary


def run_amcf_and_select(setting: Setting, seed: int) -> Path:
    """AMCF and ``amcf-select`` from one training: AMCF's models, and after every epoch the
    sources chosen on validation for the fused prediction (:mod:`amcf.source_selection`),
    reported with AMCF's protocol (epoch selected on validation, best-over-epochs and last
    epoch beside it).

    The choice is made at every epoch and a finished run keeps no weights, so it is made while
    AMCF trains: the callback only evaluates, so the training, and the published ``amcf``
    result, are those of :func:`compendium.stages.runs.run_amcf_variant` with its defaults (a
    test checks it), and each of the two results is charged half the wall time.
    ``all_sources_test_acc`` (all sources summed) repeats AMCF's own number as a check.
    Returns the ``amcf-select`` result's folder.
    """
    setting = setting.for_seed(seed)  # the sources of this seed's draw
    scheme = setting.scheme_for(seed)
    objective = MCLoss(setting.lam)
    config = setting.train.model_copy(update={"seed": seed})
    with seeded(seed):
        models = build_frozen(setting.sources, scheme, setting.splits, setting.freeze_bn_stats)
    work = work_dir(setting.work_dir / setting.splits.name, "amcf-select", seed, config,
                    setting.splits, models, objective)
    tracker = SubsetSelection(models, setting.splits, config, work / "selection.json")
    result = fit(models, setting.splits, config, objective, out_dir=work,
                 keep_checkpoint=False, callback=tracker)
    if not tracker.complete(config.epochs):
        # finished (or checkpointed) without every epoch's choice, e.g. killed between a
        # checkpoint and its callback: only a fresh training brings the weights back
        tracker.reset()
        with seeded(seed):
            models = build_frozen(setting.sources, scheme, setting.splits,
                                  setting.freeze_bn_stats)
        tracker.models = models
        result = fit(models, setting.splits, config, objective, out_dir=work, resume=False,
                     keep_checkpoint=False, callback=tracker)
    publish(setting, "amcf", seed, result,
            {"scheme": list(scheme), "lam": setting.lam,
             "sources": [s.name for s in setting.sources]}, shared_by=2)
    return _publish_selection(setting, seed, result, tracker, scheme)


def _publish_selection(setting: Setting, seed: int, result: TrainResult,
                       tracker: SubsetSelection, scheme: Sequence[int]) -> Path:
    """metrics.json of amcf-select (with the sources chosen) and a history whose val/test
    accuracies are those of the chosen subset at each epoch."""
    names = [s.name for s in setting.sources]
    out = setting.out_dir("amcf-select", seed)
    out.mkdir(parents=True, exist_ok=True)
    if tracker.best_predictions is not None:
        write_predictions(out / "test_predictions.csv",
                          torch.tensor(tracker.best_predictions), torch.tensor(tracker.test_labels))
    history = [{**row, "val_acc": sel["val_acc"], "test_acc": sel["test_acc"]}
               for row, sel in zip(result.history, tracker.rows, strict=True)]
    keep = ("members", "epochs", "num_models", "model_epochs", "trainable_params", "device")
    metrics = {"method": "amcf-select", "seed": seed, **tracker.summary(names),
               **{k: result.metrics[k] for k in keep},
               "scheme": list(scheme), "lam": setting.lam, "sources": names,
               **setting.train_facts}
    return results.publish_files(out, setting.results_dir, setting.timings_dir,
                                 dataclasses.replace(result, history=history), metrics,
                                 shared_by=2)


@ends_local_workers
def amcf_stage(target: str, seeds: Sequence[int], sources: Mapping[str, Mapping[str, Any]],
               lam: float, freeze_bn_stats: bool, train: Mapping[str, Any],
               scheme: Sequence[int] | None, searches: str | os.PathLike,
               prepared_dir: str | os.PathLike, results_dir: str | os.PathLike,
               work_dir: str | os.PathLike, shots: int | None = None) -> Path:
    """The whole ``amcf@<target>`` stage: AMCF and amcf-select on every seed (side by side),
    the stage's summary (``<target>/amcf-summary.json``), and the first seed's curves and
    per-class errors. ``scheme`` (frozen layers per source) replaces the searches' schemes
    for every seed. Returns the first seed's AMCF run folder."""
    check_device(f"amcf@{target}", train, elsewhere=attached())
    schemes = (tuple(scheme),) if scheme is not None else results.schemes_of(searches)
    splits = load_splits(target, prepared_dir)
    setting = Setting(splits=splits, **source_fields(sources),
                      scheme=schemes[0], schemes=schemes,
                      train=TrainConfig(progress=False, **train), lam=lam,
                      freeze_bn_stats=freeze_bn_stats, results_dir=results_dir,
                      work_dir=work_dir, shots=shots)
    run_all([partial(run_amcf_and_select, setting, seed) for seed in seeds])  # amcf and amcf-select
    write_group_summary(results_dir, target, "amcf")
    out = setting.out_dir("amcf", seeds[0])  # the first seed's run, drawn below
    metrics = results.read_metrics(out / "metrics.json")
    # imported here: the worker processes that import this module to train draw nothing
    from compendium.plots.curves import plot_per_class_errors, plot_training_curves

    plot_training_curves(results.history_frame(out), out / "curves",
                         selected_epoch=metrics["selected_epoch"],
                         title=f"AMCF on {target}, seed {seeds[0]}")
    plot_per_class_errors(results.predictions_frame(out), out / "per-class",
                          class_names=splits.classes)
    return out
