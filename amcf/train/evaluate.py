"""Accuracy of K models and of their fused prediction, in one pass over a dataset."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from amcf.datasets import iterate_batches
from amcf.loss import fused_logits


def autocast_for(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked; full precision everywhere else."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _logit_batches(
    models: Sequence[nn.Module],
    dataset: Dataset,
    *,
    batch_size: int,
    device: torch.device,
    amp: bool = False,
    channels_last: bool = False,
    num_workers: int = 0,
) -> Iterator[tuple[list[torch.Tensor], torch.Tensor]]:
    """Each batch's per-model logits (fp32, on the device) and labels: every model sees each
    batch once. The models are in eval mode until the pass is consumed (then as they were);
    the consumers in this module always consume a pass whole."""
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    # Evaluation draws no random numbers; the generator only satisfies the batch iterator.
    generator = torch.Generator().manual_seed(0)
    seen = 0
    try:
        for x, y in iterate_batches(dataset, batch_size, train=False, generator=generator,
                                    device=device, num_workers=num_workers):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                with autocast_for(device, amp):
                    logits = [m(x) for m in models]
                logits = [z.float() for z in logits]
            seen += 1
            yield logits, y
    finally:
        for m, mode in zip(models, was_training, strict=True):
            m.train(mode)
    if not seen:
        raise ValueError("cannot evaluate on an empty dataset: the split has no samples")


def _predictions(batches: Iterable[tuple[list[torch.Tensor], torch.Tensor]]
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fused, members, labels = [], [], []
    with torch.inference_mode():
        for logits, y in batches:
            fused.append(fused_logits(logits).argmax(dim=-1))
            members.append(torch.stack(logits).argmax(dim=-1))  # (K, B)
            labels.append(y)
    return (torch.cat(fused).cpu(), torch.cat(members, dim=1).cpu(), torch.cat(labels).cpu())


def predict(
    models: Sequence[nn.Module],
    dataset: Dataset,
    *,
    batch_size: int = 256,
    device: torch.device,
    amp: bool = False,
    channels_last: bool = False,
    num_workers: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fused predictions (N,), per-model predictions (K, N) and labels (N,), on the CPU.

    Every model sees each batch once; counts stay on the device until the end, so a pass costs
    one host synchronisation, not one per batch.
    """
    return _predictions(_logit_batches(models, dataset, batch_size=batch_size, device=device,
                                       amp=amp, channels_last=channels_last,
                                       num_workers=num_workers))


def accuracies(fused: torch.Tensor, members: torch.Tensor, labels: torch.Tensor
               ) -> tuple[float, list[float]]:
    """Fused accuracy and each model's accuracy, as fractions."""
    n = labels.numel()
    acc = (fused == labels).sum().item() / n
    member_acc = ((members == labels).sum(dim=1).double() / n).tolist()
    return acc, member_acc


def evaluate(
    models: nn.Module | Sequence[nn.Module],
    dataset: Dataset,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    *,
    amp: bool = False,
) -> dict[str, Any]:
    """Evaluate K models on ``dataset``; the fused class is the argmax of the summed logits.

    Returns ``acc`` (fused), ``member_acc`` (list, one per model), ``predictions`` (fused,
    LongTensor), ``member_predictions`` (K x N) and ``labels``. Models are moved to ``device``
    and left in the train/eval mode they had.
    """
    if isinstance(models, nn.Module):
        models = [models]
    if not models:
        raise ValueError("evaluate needs at least one model")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    for m in models:
        m.to(device)
    fused, members, labels = predict(models, dataset, batch_size=batch_size, device=device,
                                     amp=amp)
    acc, member_acc = accuracies(fused, members, labels)
    return {"acc": acc, "member_acc": member_acc, "predictions": fused,
            "member_predictions": members, "labels": labels}



@dataclass
class SubsetOutput:
    """One subset's fused prediction on a split: accuracy, mean cross-entropy, and (when
    asked) the predicted classes."""

    acc: float
    loss: float
    predictions: torch.Tensor | None = None


def _check_subsets(subsets: Sequence[Sequence[int]]) -> None:
    if not subsets or any(not s for s in subsets):
        raise ValueError(f"subsets must be non-empty lists of model indices, got {subsets}")


def _subset_outputs(batches: Iterable[tuple[list[torch.Tensor], torch.Tensor]],
                    subsets: Sequence[Sequence[int]], device: torch.device,
                    keep_predictions: bool) -> tuple[list[SubsetOutput], torch.Tensor]:
    correct = torch.zeros(len(subsets), dtype=torch.float64, device=device)
    ce_sum = torch.zeros(len(subsets), dtype=torch.float64, device=device)
    predictions: list[list[torch.Tensor]] = [[] for _ in subsets]
    labels = []
    with torch.inference_mode():
        for logits, y in batches:
            for i, subset in enumerate(subsets):
                fused = fused_logits([logits[j] for j in subset])
                predicted = fused.argmax(dim=-1)
                correct[i] += (predicted == y).sum()
                ce_sum[i] += torch.nn.functional.cross_entropy(fused, y, reduction="sum")
                if keep_predictions:
                    predictions[i].append(predicted.cpu())
            labels.append(y.cpu())
    seen = sum(y.numel() for y in labels)
    outputs = [SubsetOutput(c / seen, l / seen, torch.cat(p) if keep_predictions else None)
               for c, l, p in zip(correct.tolist(), ce_sum.tolist(), predictions, strict=True)]
    return outputs, torch.cat(labels)


def subset_outputs(
    models: Sequence[nn.Module],
    dataset: Dataset,
    subsets: Sequence[Sequence[int]],
    *,
    batch_size: int = 256,
    device: torch.device,
    amp: bool = False,
    channels_last: bool = False,
    num_workers: int = 0,
    keep_predictions: bool = False,
) -> tuple[list[SubsetOutput], torch.Tensor]:
    """The fused prediction of each subset of the models (summed logits), and the labels.

    One pass over ``dataset``: every model sees each batch once and every subset's fused
    logits are formed from those, so scoring all 2^K - 1 subsets costs one evaluation. The
    cross-entropy is that of the fused prediction (softmax of the summed logits), in fp32.
    """
    _check_subsets(subsets)
    batches = _logit_batches(models, dataset, batch_size=batch_size, device=device, amp=amp,
                             channels_last=channels_last, num_workers=num_workers)
    return _subset_outputs(batches, subsets, device, keep_predictions)


def subset_scores(models: Sequence[nn.Module], dataset: Dataset,
                  subsets: Sequence[Sequence[int]], **options: Any) -> list[tuple[float, float]]:
    """(accuracy, mean cross-entropy) of the summed logits of each subset of the models
    (options as :func:`subset_outputs`)."""
    outputs, _ = subset_outputs(models, dataset, subsets, **options)
    return [(o.acc, o.loss) for o in outputs]


class EpochEvaluation:
    """The evaluation passes of one epoch, each split evaluated at most once.

    :func:`amcf.train.fit.fit` reads its accuracies from these passes, and hands them to an
    epoch callback that takes ``evals``; with ``keep_logits`` the per-batch logits of a pass
    stay (on the device) for the epoch, so such a callback scores subsets of the models
    (:meth:`subset_outputs`: the same operations, in the same order, as
    :func:`subset_outputs` on a pass of its own, hence the same bits) without a second pass.
    A split that no pass has read yet is evaluated when first asked for.
    """

    def __init__(self, models: Sequence[nn.Module], datasets: Mapping[str, Dataset], *,
                 keep_logits: bool, **options: Any):
        self.models = list(models)
        self.datasets = dict(datasets)
        self.keep_logits = keep_logits
        self.options = options  # batch_size, device, amp, channels_last, num_workers
        self.passes: Counter[str] = Counter()  # passes run per split (a test reads it)
        self._logits: dict[str, list[tuple[list[torch.Tensor], torch.Tensor]]] = {}
        self._predictions: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _batches(self, split: str) -> Iterable[tuple[list[torch.Tensor], torch.Tensor]]:
        if split in self._logits:
            return self._logits[split]
        self.passes[split] += 1
        batches = _logit_batches(self.models, self.datasets[split], **self.options)
        if self.keep_logits:
            self._logits[split] = list(batches)
            return self._logits[split]
        return batches

    def predictions(self, split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fused predictions, per-model predictions and labels on ``split`` (as :func:`predict`)."""
        if split not in self._predictions:
            self._predictions[split] = _predictions(self._batches(split))
        return self._predictions[split]

    def subset_outputs(self, split: str, subsets: Sequence[Sequence[int]],
                       keep_predictions: bool = False) -> tuple[list[SubsetOutput], torch.Tensor]:
        """As :func:`subset_outputs` on ``split``, from this epoch's pass when it kept logits."""
        _check_subsets(subsets)
        return _subset_outputs(self._batches(split), subsets, self.options["device"],
                               keep_predictions)

    def serves(self, models: Sequence[nn.Module], split: str, dataset: Dataset) -> bool:
        """Whether this epoch's passes are those of ``models`` on ``dataset`` as ``split``."""
        return (len(models) == len(self.models)
                and all(a is b for a, b in zip(models, self.models, strict=True))
                and self.datasets.get(split) is dataset)
