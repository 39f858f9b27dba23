"""One training loop for every method: K models, shared batches, one joint backward."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from amcf.datasets import Splits, iterate_batches
from amcf.io import read_json, write_json
from amcf.objective import MCLoss, Objective
from amcf.train import records, state
from amcf.train.config import TrainConfig, resolve_device
from amcf.train.evaluate import EpochEvaluation, accuracies, autocast_for
from amcf.train.selectable import Selectable

EVAL_BATCH_SIZE = 256
# A mean train loss this many times above chance level (K * ln C) means the run diverged.
DIVERGENCE_FACTOR = 100
HISTORY, METRICS, CHECKPOINT, PREDICTIONS, TIMING = (
    "history.csv", "metrics.json", "checkpoint.pt", "test_predictions.csv", "timing.json")
# Callback after each finished epoch: (epoch, history row); one that also takes ``evals``
# gets the epoch's evaluation passes (amcf.train.evaluate.EpochEvaluation), to score what it
# needs from the logits fit computed instead of evaluating a split a second time.
EpochCallback = Callable[..., None]


@dataclass
class TrainResult:
    """What :func:`fit` returns. The models hold the weights of the last epoch."""

    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    out_dir: Path | None = None
    resumed_from_epoch: int = 0  # epochs already done when this call started
    cached: bool = False  # True when a finished run in out_dir was returned without training
    test_predictions: torch.Tensor | None = field(default=None, repr=False)
    # wall-clock seconds: kept apart from ``metrics``, which must repeat byte for byte
    timing: dict[str, Any] = field(default_factory=dict)
    # where this call's time went (train vs evaluation seconds and images, the first batch's
    # loss), for benchmarks; never written to disk
    breakdown: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def selected_epoch(self) -> int:
        return self.metrics["selected_epoch"]

    @property
    def val_acc(self) -> float:
        return self.metrics["val_acc"]

    @property
    def test_acc(self) -> float | None:
        return self.metrics["test_acc"]

    @property
    def best_test_acc(self) -> float | None:
        return self.metrics["best_test_acc"]


@dataclass
class _Run:
    """The mutable state of a run: everything a checkpoint must carry besides the models."""

    optimizers: list[torch.optim.Optimizer]
    schedulers: list[torch.optim.lr_scheduler.StepLR]
    batches: torch.Generator
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float = -1.0
    best_predictions: torch.Tensor | None = None  # fused test predictions, selected epoch
    test_labels: torch.Tensor | None = None
    # test_eval "selected": the weights of the epochs selection may report
    selectable: Selectable = field(default_factory=Selectable)
    breakdown: dict[str, Any] = field(default_factory=lambda: {
        "train_s": 0.0, "train_images": 0, "eval_s": 0.0, "eval_images": 0,
        "test_evaluations": 0, "first_loss": None})


def _check_inputs(models: Sequence[nn.Module], splits: Splits, config: Any) -> TrainConfig:
    if isinstance(config, dict):
        config = TrainConfig(**config)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig (or a dict of its fields), got "
                        f"{type(config).__name__}")
    if isinstance(models, nn.Module) or not models:
        raise ValueError("models must be a non-empty sequence of nn.Module (one per source)")
    for j, m in enumerate(models):
        if not isinstance(m, nn.Module):
            raise TypeError(f"models[{j}] is a {type(m).__name__}, not an nn.Module")
    if len({id(m) for m in models}) != len(models):
        raise ValueError("the same model object appears twice in models; build one per source")
    for name in ("train", "val"):
        if len(getattr(splits, name)) == 0:
            raise ValueError(f"splits.{name} of {splits.name!r} is empty; fit needs samples")
    return config


def _make_optimisers(models, objective, config) -> tuple[list, list]:
    optimizers, schedulers = [], []
    for j, m in enumerate(models):
        params = list(objective.trainable_parameters(m))
        if not params:
            raise ValueError(f"model {j} has no trainable parameters; unfreeze at least its "
                             "classifier head (freeze fewer layers)")
        # an objective that regularises the weights itself (L2-SP) sets weight_decay to
        # replace the optimiser's, so the weights are not pulled twice
        decay = getattr(objective, "weight_decay", None)
        # fused: one kernel per step for all of a model's tensors (CUDA); same update rule
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                              weight_decay=config.weight_decay if decay is None else decay,
                              fused=True if params[0].is_cuda else None)
        optimizers.append(opt)
        schedulers.append(torch.optim.lr_scheduler.StepLR(opt, config.step_size, config.gamma))
    return optimizers, schedulers


def _aux_batches(splits: Splits, config: TrainConfig, epoch: int, device) -> Iterator:
    """A fresh pass over the training data for ``before_epoch``, from its own generator.

    Seeded from (seed, epoch) so it repeats after a resume and never advances the stream
    that shuffles and augments the training batches.
    """
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 1)
    return iterate_batches(splits.train, config.batch_size, train=True, generator=generator,
                           device=device, num_workers=config.workers())


def _train_epoch(models, splits, config, objective, run: _Run, device) -> float:
    for m in models:
        m.train()
    total = torch.zeros((), device=device)
    first = None
    seen = 0
    channels_last = config.channels_last
    for x, y in iterate_batches(splits.train, config.batch_size, train=True,
                                generator=run.batches, device=device,
                                num_workers=config.workers()):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_for(device, config.amp):
            logits = [m(x) for m in models]
        # The loss is formed in fp32 so the MC penalty's norms are not rounded to bf16.
        loss = objective.loss([z.float() for z in logits], y) + objective.penalty(models)
        for opt in run.optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        objective.after_backward(models)
        for opt in run.optimizers:
            opt.step()
        total += loss.detach() * y.shape[0]
        if first is None:
            first = loss.detach()
        seen += y.shape[0]
    run.breakdown["train_images"] += seen
    if run.breakdown["first_loss"] is None and first is not None:
        run.breakdown["first_loss"] = first.item()
    return total.item() / max(seen, 1)  # the epoch's one host synchronisation


def _epoch_evaluation(models, splits, config, device, keep_logits: bool) -> EpochEvaluation:
    return EpochEvaluation(
        models, {"val": splits.val, "test": splits.test}, keep_logits=keep_logits,
        batch_size=max(EVAL_BATCH_SIZE, config.batch_size), device=device, amp=config.amp,
        channels_last=config.channels_last, num_workers=config.workers())


def takes_evals(callback: EpochCallback | None) -> bool:
    """Whether an epoch callback takes the epoch's evaluation passes (an ``evals`` argument)."""
    if callback is None:
        return False
    try:
        return "evals" in inspect.signature(callback).parameters
    except (TypeError, ValueError):  # a builtin or C callable: no signature to read
        return False


def _checkpoint(path, models, objective, run: _Run, identity, epoch, device) -> None:
    state.save_resume_state(
        path,
        identity=identity,
        epoch=epoch,
        models=[m.state_dict() for m in models],
        optimizers=[o.state_dict() for o in run.optimizers],
        schedulers=[s.state_dict() for s in run.schedulers],
        objective=objective.state_dict(),
        rng=state.rng_state(run.batches, device),
        history=run.history,
        best_val=run.best_val,
        best_predictions=run.best_predictions,
        test_labels=run.test_labels,
        selectable=run.selectable.state_dict(),
    )


def checkpoint_due(config: TrainConfig, epoch: int, seconds_since: float,
                   keep_checkpoint: bool) -> bool:
    """Whether the resume checkpoint is written after ``epoch``: every ``checkpoint_every``
    epochs, or once ``checkpoint_minutes`` have passed since the last one; after the last
    epoch only when the run keeps its checkpoint (otherwise it would be deleted at once).

    Which epochs are saved never changes a result: a run resumed from any epoch's checkpoint
    repeats the bits of an uninterrupted one.
    """
    if epoch == config.epochs:
        return keep_checkpoint
    minutes = config.checkpoint_minutes
    return (epoch % config.checkpoint_every == 0
            or (minutes is not None and seconds_since >= 60 * minutes))


def _refuse(out_dir: Path, what: str, problems: list[str]) -> RuntimeError:
    return RuntimeError(
        f"{out_dir / what} was written by a different run:\n  - " + "\n  - ".join(problems)
        + f"\nUse another out_dir, delete {out_dir}, or call fit(..., resume=False) to "
        "overwrite it."
    )


def _restore(ckpt, models, objective, run: _Run, device) -> int:
    for m, sd in zip(models, ckpt["models"], strict=True):
        m.load_state_dict(sd)
    for o, sd in zip(run.optimizers, ckpt["optimizers"], strict=True):
        o.load_state_dict(sd)
    for s, sd in zip(run.schedulers, ckpt["schedulers"], strict=True):
        s.load_state_dict(sd)
    objective.load_state_dict(ckpt["objective"])
    state.restore_rng(ckpt["rng"], run.batches, device)
    run.history = list(ckpt["history"])
    run.best_val = ckpt["best_val"]
    run.best_predictions = ckpt["best_predictions"]
    run.test_labels = ckpt["test_labels"]
    run.selectable = Selectable.from_state(ckpt.get("selectable"))
    return int(ckpt["epoch"])


def _cached_result(out_dir: Path, identity, models, device) -> TrainResult | None:
    """A finished run with this identity in ``out_dir``, or None when there is none."""
    metrics_path = out_dir / METRICS
    if not metrics_path.exists():
        return None
    metrics = read_json(metrics_path)
    problems = state.identity_mismatch(metrics.get("identity", {}), identity)
    if problems:
        raise _refuse(out_dir, METRICS, problems)
    metrics.pop("wall_time_s", None)  # a run finished before timings moved to timing.json
    predictions = None
    if (out_dir / CHECKPOINT).exists():
        ckpt = state.load_resume_state(out_dir / CHECKPOINT)
        for m, sd in zip(models, ckpt["models"], strict=True):
            m.load_state_dict(sd)
            m.to(device)
        history, predictions = list(ckpt["history"]), ckpt["best_predictions"]
    else:  # deleted to save space: the numbers remain
        history = records.read_history(out_dir / HISTORY)
    timing = (read_json(out_dir / TIMING) if (out_dir / TIMING).exists()
              else records.timing(history))
    return TrainResult(metrics, history, out_dir, len(history), cached=True,
                       test_predictions=predictions, timing=timing)


def _metrics(run: _Run, models, objective, config, device, identity) -> dict[str, Any]:
    trainable = [sum(p.numel() for p in objective.trainable_parameters(m)) for m in models]
    summary = records.summarise(run.history, len(models))
    if config.test_eval != "every":  # the maximum over some epochs is not the paper's figure
        summary["best_test_acc"] = None
        for member in summary["members"]:
            member["best_test_acc"] = None
    for member, n in zip(summary["members"], trainable, strict=True):
        member["trainable_params"] = n
    return {
        **summary,
        "epochs": config.epochs,
        "num_models": len(models),
        "model_epochs": config.epochs * len(models),
        "trainable_params": sum(trainable),
        "device": device.type,  # where it trained (which card is the scheduler's choice)
        "identity": identity,
    }


def fit(
    models: Sequence[nn.Module],
    splits: Splits,
    config: TrainConfig,
    objective: Objective | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    *,
    callback: EpochCallback | None = None,
    keep_checkpoint: bool = True,
) -> TrainResult:
    """Train K models together on ``splits.train``; select the epoch by fused val accuracy.

    Every model sees the same batches; the step is one backward pass of
    ``objective.loss(logits, y) + objective.penalty(models)``, then
    ``objective.after_backward(models)``, then one SGD step per model. With ``out_dir`` the
    run writes history.csv (every epoch), checkpoint.pt (the latest only, every
    ``config.checkpoint_every`` epochs or ``checkpoint_minutes``), test_predictions.csv, timing.json
    (the wall-clock seconds, which no other file holds) and metrics.json (last: it marks the
    run finished). With ``resume`` a finished run with the
    same settings is returned as it is, and a checkpoint is continued; either one written
    with other settings or models is refused. On a resume the models passed in must be the
    freshly built ones, as for the first call (their starting weights are checked).
    ``keep_checkpoint=False`` deletes checkpoint.pt once metrics.json is written: a finished
    run is then reused from its metrics, history and predictions (what resuming and the
    report need), without its weights.
    """
    config = _check_inputs(models, splits, config)
    objective = MCLoss() if objective is None else objective
    device = resolve_device(config.device)
    identity = state.run_identity(config.identity(), models, objective, device)
    out_dir = Path(out_dir) if out_dir is not None else None

    if out_dir is not None and resume:
        cached = _cached_result(out_dir, identity, models, device)
        if cached is not None:
            return cached
    if out_dir is not None and not resume:
        for stale in (METRICS, PREDICTIONS, CHECKPOINT, TIMING):
            (out_dir / stale).unlink(missing_ok=True)

    torch.manual_seed(config.seed)
    for m in models:
        m.to(device)
        if config.channels_last:
            m.to(memory_format=torch.channels_last)
        if config.compile and device.type == "cuda":
            m.compile()  # in place: the state_dict keys (checkpoints) stay as they are
    objective.setup(models, torch.Generator().manual_seed(config.seed + 1))
    optimizers, schedulers = _make_optimisers(models, objective, config)
    run = _Run(optimizers, schedulers, torch.Generator().manual_seed(config.seed))

    start = 0
    ckpt_path = out_dir / CHECKPOINT if out_dir is not None else None
    if ckpt_path is not None and resume and ckpt_path.exists():
        ckpt = state.load_resume_state(ckpt_path)
        problems = state.identity_mismatch(ckpt.get("identity", {}), identity)
        if problems:
            raise _refuse(out_dir, CHECKPOINT, problems)
        start = _restore(ckpt, models, objective, run, device)

    saved_at = time.monotonic()
    bar = tqdm(total=config.epochs, initial=start, disable=not config.progress,
               desc=f"fit {splits.name}", unit="epoch", leave=False)
    keep_logits = takes_evals(callback)
    try:
        for epoch in range(start + 1, config.epochs + 1):
            evals = _run_epoch(epoch, models, splits, config, objective, run, device,
                               keep_logits)
            row = run.history[-1]
            if out_dir is not None:
                records.write_history(out_dir / HISTORY, run.history, len(models))
                if checkpoint_due(config, epoch, time.monotonic() - saved_at, keep_checkpoint):
                    _checkpoint(ckpt_path, models, objective, run, identity, epoch, device)
                    saved_at = time.monotonic()
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row['val_acc']:.3f}")
            if keep_logits:
                callback(epoch, row, evals=evals)
            elif callback is not None:
                callback(epoch, row)
            del evals  # the kept logits go before the next epoch trains
    finally:
        bar.close()

    if config.eval_test and config.test_eval == "selected":
        _test_selected(models, splits, config, run, device)
        if out_dir is not None:
            records.write_history(out_dir / HISTORY, run.history, len(models))
    metrics = _metrics(run, models, objective, config, device, identity)
    timing = records.timing(run.history)
    if out_dir is not None:
        if run.best_predictions is not None:
            records.write_predictions(out_dir / PREDICTIONS, run.best_predictions,
                                      run.test_labels)
        write_json(out_dir / TIMING, timing)
        write_json(out_dir / METRICS, metrics)
        if not keep_checkpoint:
            ckpt_path.unlink(missing_ok=True)
    return TrainResult(metrics, list(run.history), out_dir, resumed_from_epoch=start,
                       test_predictions=run.best_predictions, timing=timing,
                       breakdown=dict(run.breakdown))


def _run_epoch(epoch, models, splits, config, objective, run: _Run, device,
               keep_logits: bool = False) -> EpochEvaluation:
    t0 = time.perf_counter()
    objective.before_epoch(models, epoch, _aux_batches(splits, config, epoch, device))
    lr = run.optimizers[0].param_groups[0]["lr"]
    train_loss = _train_epoch(models, splits, config, objective, run, device)
    if train_loss != train_loss or train_loss in (float("inf"), float("-inf")):
        raise FloatingPointError(
            f"training diverged at epoch {epoch} (train loss {train_loss}); lower lr "
            f"(now {config.lr}) or check the objective's penalty")
    chance = len(models) * math.log(max(splits.num_classes, 2))
    if train_loss > DIVERGENCE_FACTOR * chance:
        # a finite but exploding loss: the run would end at chance accuracy and be reported
        raise FloatingPointError(
            f"training diverged at epoch {epoch}: train loss {train_loss:.3g} is more than "
            f"{DIVERGENCE_FACTOR}x that of a chance-level prediction ({chance:.3g} for "
            f"{len(models)} model(s) and {splits.num_classes} classes); lower lr (now "
            f"{config.lr}) or check the objective's penalty")
    for s in run.schedulers:
        s.step()
    t1 = time.perf_counter()
    evals = _epoch_evaluation(models, splits, config, device, keep_logits)
    val = accuracies(*evals.predictions("val"))
    test = test_pred = None
    if config.eval_test and config.test_eval == "selected":
        run.selectable.observe(models, epoch, val, run.history)
    elif config.eval_test and (config.test_eval == "every"
                               or val_improved(run.history, val)):
        test_pred, members, run.test_labels = evals.predictions("test")
        test = accuracies(test_pred, members, run.test_labels)
        run.breakdown["test_evaluations"] += 1
        run.breakdown["eval_images"] += len(splits.test)
    if val[0] > run.best_val:  # strict: the first epoch wins a tie
        run.best_val = val[0]
        run.best_predictions = test_pred
    t2 = time.perf_counter()
    run.breakdown["train_s"] += t1 - t0
    run.breakdown["eval_s"] += t2 - t1
    run.breakdown["eval_images"] += len(splits.val)
    seconds = t2 - t0
    run.history.append(records.make_row(epoch, train_loss, lr, val, test, seconds))
    return evals


def _test_selected(models, splits, config, run: _Run, device) -> None:
    """``test_eval: selected``: the test passes of the epochs selection reports, after the
    last epoch (amcf.train.selectable); their seconds count towards the last epoch's."""
    t0 = time.perf_counter()

    def test_pass(some):  # the options of every epoch's passes, hence the same bits
        return _epoch_evaluation(some, splits, config, device, keep_logits=False
                                 ).predictions("test")

    run.best_predictions, run.test_labels, passes = run.selectable.evaluate(
        models, run.history, test_pass)
    seconds = time.perf_counter() - t0
    run.history[-1]["seconds"] = (run.history[-1].get("seconds") or 0.0) + seconds
    run.breakdown["eval_s"] += seconds
    run.breakdown["test_evaluations"] += passes
    run.breakdown["eval_images"] += passes * len(splits.test)


def val_improved(history: list[dict[str, Any]], val: tuple[float, list[float]]) -> bool:
    """Whether the fused or any member's validation accuracy beats every earlier epoch's.

    Those are the only epochs whose test accuracy model selection can report (fused and per
    member, strict improvement as in :func:`records.best_index`).
    """
    if not history:
        return True
    if val[0] > max(r["val_acc"] for r in history):
        return True
    return any(acc > max(r[f"val_acc_m{j}"] for r in history) for j, acc in enumerate(val[1]))
